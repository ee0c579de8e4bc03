#!/bin/sh
# The certificate nginx/mcplookup.conf loads: /etc/nginx/tls/mcplookup.crt and mcplookup.key.
# compose.yaml mounts this script into the nginx image's /docker-entrypoint.d/, which runs it before nginx
# starts, and mounts ./nginx/tls at /etc/nginx/tls:
# - a certificate and key supplied there (the real ones for the public name) are used as they are;
# - with neither, a self-signed development certificate for localhost and 127.0.0.1 is made there with
#   openssl (in the image, a dependency of its ca-certificates), once: later starts keep it. Clients
#   trust it by naming it (curl --cacert nginx/tls/mcplookup.crt); browsers warn.
# TLS_DIR names another directory (the tests run this script against their own nginx).
set -eu

dir="${TLS_DIR:-/etc/nginx/tls}"
crt="$dir/mcplookup.crt"
key="$dir/mcplookup.key"

if [ -s "$crt" ] && [ -s "$key" ]; then
    echo "mcplookup-tls: using the certificate in $crt"
    exit 0
fi
if [ -e "$crt" ] || [ -e "$key" ]; then
    echo "mcplookup-tls: only one of $crt and $key is there: supply both, or remove it for a development certificate" >&2
    exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "mcplookup-tls: no certificate in $dir and no openssl to make one: put mcplookup.crt and mcplookup.key there" >&2
    exit 1
fi
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -keyout "$key.new" -out "$crt.new" 2>/dev/null
chmod 644 "$crt.new"
mv "$key.new" "$key"
mv "$crt.new" "$crt"
echo "mcplookup-tls: no certificate was supplied: made a self-signed development certificate for localhost in $crt; put the real one there for a public name"
