#!/bin/sh
# The init service: mints the CA and one certificate per service into /pki, once. Each
# certificate names the service's DNS name in the compose network.
set -eu
dir=/pki
if [ -f "$dir/ca.key" ]; then
  echo "init-pki: $dir has a CA already; nothing to do"
  exit 0
fi
icbd pki init --dir "$dir"
issue() { icbd pki issue --dir "$dir" --role "$1" --name "$2" --dns "$2"; }
issue catalog catalog
issue catalog catalog-2
issue replicator replicator-hq
issue replicator replicator-branch
issue cache cache-branch-1
issue cache cache-branch-2
issue gateway gateway-branch
icbd pki issue --dir "$dir" --role admin --name admin
echo "init-pki: certificates in $dir"
