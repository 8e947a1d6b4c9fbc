#!/bin/sh
# The init service: mints the CA and one certificate per service into /ca (a volume no other
# container mounts), once, and copies each service's three files -- ca.crt, NAME.crt, NAME.key --
# into /tls/NAME, that service's own volume. Each certificate names the service's DNS name in the
# compose network. Runs on every `docker-compose up`: what exists is kept, what is missing is
# minted (a service added later gets its certificate then), what expires within 30 days renewed.
#
# It also writes /metrics-textfile/certificates.prom: each certificate's expiry date, read by
# node-exporter for the "certificate expires within 14 days" alert.
set -eu
# /ca/authority: the CA's key and certificate; /ca/certs: ca.crt and every NAME.crt/NAME.key.
authority=/ca/authority
ca=/ca/certs
pki() { command=$1; shift; icbd pki "$command" --dir "$ca" --ca-dir "$authority" "$@"; }
if [ ! -f "$authority/ca.key" ]; then
  pki init
fi

# issue ROLE NAME [icbd pki issue options]: mints NAME's key and certificate unless it has one.
issue() {
  role=$1 name=$2
  shift 2
  [ -f "$ca/$name.crt" ] || pki issue --role "$role" --name "$name" "$@"
}
issue catalog catalog --dns catalog
issue catalog catalog-2 --dns catalog-2
issue replicator replicator-hq --dns replicator-hq
issue replicator replicator-branch --dns replicator-branch
issue cache cache-branch-1 --dns cache-branch-1
issue cache cache-branch-2 --dns cache-branch-2
issue gateway gateway-branch --dns gateway-branch
issue admin admin

# Certificates with less than 30 days left are renewed (a new key too); the services load the
# new files when they restart.
for crt in "$ca"/*.crt; do
  name=$(basename "$crt" .crt)
  [ "$name" = ca ] && continue
  openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) > /dev/null || pki renew --name "$name"
done

# Each mounted /tls/NAME gets exactly ca.crt, NAME.crt and NAME.key (the key 0600).
for dir in /tls/*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir")
  [ -f "$ca/$name.crt" ] || { echo "init-pki: /tls/$name is mounted but no certificate is named $name" >&2; exit 1; }
  install -m 0644 "$ca/ca.crt" "$dir/ca.crt"
  install -m 0644 "$ca/$name.crt" "$dir/$name.crt"
  install -m 0600 "$ca/$name.key" "$dir/$name.key"
  echo "init-pki: /tls/$name holds ca.crt, $name.crt, $name.key"
done

if [ -d /metrics-textfile ]; then
  out=/metrics-textfile/certificates.prom
  {
    echo "# HELP icbd_certificate_not_after_seconds When the certificate stops being valid (Unix time)."
    echo "# TYPE icbd_certificate_not_after_seconds gauge"
    for crt in "$ca"/*.crt; do
      name=$(basename "$crt" .crt)
      not_after=$(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2)
      echo "icbd_certificate_not_after_seconds{name=\"$name\"} $(date -d "$not_after" +%s)"
    done
  } > "$out.tmp"
  mv "$out.tmp" "$out"
fi
echo "init-pki: certificates in place"
