#!/usr/bin/env bash
# Mints the certificates the C tests use, with the openssl command line, in DIR:
#
#   ca.crt ca.key                 the deployment CA (P-256, like `icbd pki init`)
#   tester.*                      icbd://admin/tester, the client
#   peer.*                        icbd://cache/peer, DNS localhost, IP 127.0.0.1: the test server
#   peer-catalog.*                icbd://catalog/peer: a server of the wrong role for a cache client
#   peer-two-uris.*               two icbd:// URIs
#   peer-no-uri.*                 no URI SAN
#   peer-bad-uri.*                icbd://Cache/peer (roles are case-sensitive)
#   peer-client-only.*            extended key usage clientAuth only
#   peer-dns-only.*               DNS localhost, no IP SAN: refused when dialled as 127.0.0.1
#   peer-expired.*                valid from 2001 to 2002
#   other/ca.crt, other/peer.*, other/tester.*   the same identities from another CA
#
# usage: mkpki.sh DIR
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
rm -rf "$dir"
mkdir -p "$dir/other"

key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

ca() {
  local out=$1 name=$2
  key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -subj "/CN=$name" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.crt" 2>/dev/null
}

# issue CA_DIR NAME SAN EKU [openssl-ca date options...]
issue() {
  local ca_dir=$1 name=$2 san=$3 eku=$4
  shift 4
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$ext"
  key "$ca_dir/$name.key"
  openssl req -new -key "$ca_dir/$name.key" -subj "/CN=$name" -out "$ca_dir/$name.csr" 2>/dev/null
  if [ $# -eq 0 ]; then
    openssl x509 -req -in "$ca_dir/$name.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$ext" \
      -out "$ca_dir/$name.crt" 2>/dev/null
  else
    # Explicit validity dates need `openssl ca` and its small database.
    local db
    db=$(mktemp -d)
    touch "$db/index.txt"
    cat > "$db/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
EOF
    openssl rand -hex 16 > "$db/serial"
    openssl ca -batch -config "$db/ca.cnf" -cert "$ca_dir/ca.crt" -keyfile "$ca_dir/ca.key" \
      -in "$ca_dir/$name.csr" -extfile "$ext" -notext "$@" -out "$ca_dir/$name.crt" 2>/dev/null
    rm -rf "$db"
  fi
  rm -f "$ext" "$ca_dir/$name.csr"
}

both="serverAuth,clientAuth"
ca "$dir" "icbd C test CA"
issue "$dir" tester "URI:icbd://admin/tester" "$both"
issue "$dir" peer "URI:icbd://cache/peer,DNS:localhost,IP:127.0.0.1" "$both"
issue "$dir" peer-catalog "URI:icbd://catalog/peer,DNS:localhost,IP:127.0.0.1" "$both"
issue "$dir" peer-two-uris "URI:icbd://cache/peer,URI:icbd://cache/other,DNS:localhost,IP:127.0.0.1" "$both"
issue "$dir" peer-no-uri "DNS:localhost,IP:127.0.0.1" "$both"
issue "$dir" peer-bad-uri "URI:icbd://Cache/peer,DNS:localhost,IP:127.0.0.1" "$both"
issue "$dir" peer-client-only "URI:icbd://cache/peer,DNS:localhost,IP:127.0.0.1" "clientAuth"
issue "$dir" peer-dns-only "URI:icbd://cache/peer,DNS:localhost" "$both"
issue "$dir" peer-expired "URI:icbd://cache/peer,DNS:localhost,IP:127.0.0.1" "$both" \
  -startdate 20010101000000Z -enddate 20020101000000Z

ca "$dir/other" "another CA"
issue "$dir/other" peer "URI:icbd://cache/peer,DNS:localhost,IP:127.0.0.1" "$both"
issue "$dir/other" tester "URI:icbd://admin/tester" "$both"
