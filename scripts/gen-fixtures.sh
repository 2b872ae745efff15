#!/usr/bin/env bash
# Regenerates the X.509 test fixtures in tests/fixtures/certs/ with the openssl command line tool.
#
#   scripts/gen-fixtures.sh            # from the repository root (or from anywhere)
#
# The tool itself never links OpenSSL: openssl is used here only to make test data. File names are
# fixed; contents change on every run (fresh random keys). Private keys live in a temporary
# directory and are deleted at exit: nothing secret is written to the repository.
set -euo pipefail

command -v openssl >/dev/null || { echo "gen-fixtures: openssl not found on PATH" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/tests/fixtures/certs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
# Remove earlier outputs (certificates only; README.md stays).
rm -f "$OUT"/*.crt "$OUT"/*.pem

echo "gen-fixtures: $(openssl version)" >&2

# A private config so the system openssl.cnf cannot add or change extensions.
CNF="$WORK/openssl.cnf"
cat >"$CNF" <<'CONF'
[ req ]
distinguished_name = req_dn
string_mask        = utf8only
prompt             = no
[ req_dn ]
CN = unused
[ ca_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ ca_ext_noski ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = none
authorityKeyIdentifier = none
[ intermediate_ext ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ leaf_selfsigned_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier   = hash
[ cluster_ext ]
basicConstraints       = CA:FALSE
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ expired_ca ]
dir              = $ENV::EXPIRED_DIR
database         = $dir/index.txt
new_certs_dir    = $dir/new
serial           = $dir/serial
default_md       = sha256
policy           = policy_any
unique_subject   = no
email_in_dn      = no
copy_extensions  = none
[ policy_any ]
commonName       = supplied
organizationName = optional
countryName      = optional
CONF
export OPENSSL_CONF="$CNF"
export EXPIRED_DIR="$WORK/expired"   # used by the [ expired_ca ] section

# newkey <file> <spec>: spec is rsa2048, rsa3072, p256, p384, p521, p224, ed25519
newkey() {
  case "$2" in
    rsa*)    openssl genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa}" -out "$1" ;;
    p224)    openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-224 -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    p256)    openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    p384)    openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    p521)    openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    ed25519) openssl genpkey -quiet -algorithm ED25519 -out "$1" ;;
    *) echo "gen-fixtures: unknown key spec $2" >&2; exit 1 ;;
  esac
}

# sigargs <sig>: sig is sha1|sha224|sha256|sha384|sha512 (PKCS#1 v1.5 or ECDSA), pss-<hash>, or none (Ed25519)
sigargs() {
  case "$1" in
    none)  ;;
    pss-*) echo "-${1#pss-} -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -sigopt rsa_mgf1_md:${1#pss-}" ;;
    *)     echo "-$1" ;;
  esac
}

# selfsigned <out.crt> <key> <subject> <sig> <extensions section> <serial>
selfsigned() {
  # shellcheck disable=SC2046
  openssl req -x509 -new -key "$2" -subj "$3" -days 7300 -set_serial "$6" \
    -config "$CNF" -extensions "$5" $(sigargs "$4") -out "$1"
}

# issue <out.crt> <subject key> <subject> <ca.crt> <ca.key> <sig> <extensions section> <serial>
# Like CloudHSM: the subject key makes a CSR, the CA signs the CSR.
issue() {
  local csr
  csr="$WORK/$(basename "$1").csr"
  openssl req -new -key "$2" -subj "$3" -config "$CNF" -out "$csr"
  # shellcheck disable=SC2046
  openssl x509 -req -in "$csr" -CA "$4" -CAkey "$5" -days 7300 -set_serial "$8" \
    -extfile "$CNF" -extensions "$7" $(sigargs "$6") -out "$1" 2>"$WORK/x509.log" \
    || { cat "$WORK/x509.log" >&2; exit 1; }
}

# issue_noext: the exact command from the CloudHSM guide (no extensions at all, so no AKI).
issue_noext() {
  local csr
  csr="$WORK/$(basename "$1").csr"
  openssl req -new -key "$2" -subj "$3" -config "$CNF" -out "$csr"
  # shellcheck disable=SC2046
  openssl x509 -req -in "$csr" -CA "$4" -CAkey "$5" -days 7300 -set_serial "$7" \
    $(sigargs "$6") -out "$1" 2>"$WORK/x509.log" \
    || { cat "$WORK/x509.log" >&2; exit 1; }
}

hsm_subject() { printf '/C=US/ST=CA/L=San Jose/O=Cavium/OU=N3FIPS/CN=HSM:5.3G1941-ICM%06d:PARTN:%d, for FIPS mode' "$1" "$1"; }
ca_subject() { echo "/C=US/O=Example Corp/OU=KMS custom key store tests/CN=$1 customer CA"; }

# ---------------------------------------------------------------- CA + cluster certificate pairs
# name              CA key    signature
PAIRS="
rsa2048-pkcs1-sha256 rsa2048 sha256
rsa3072-pss-sha384   rsa3072 pss-sha384
ec-p256-sha256       p256    sha256
ec-p384-sha384       p384    sha384
ec-p521-sha512       p521    sha512
rsa2048-pkcs1-sha224 rsa2048 sha224
rsa2048-pkcs1-sha1   rsa2048 sha1
rsa2048-pkcs1-sha512 rsa2048 sha512
ec-p384-sha256       p384    sha256
ec-p521-sha256       p521    sha256
ec-p256-sha512       p256    sha512
ec-p224-sha256       p224    sha256
ed25519              ed25519 none
"
n=0
while read -r name keyspec sig; do
  [ -n "$name" ] || continue
  n=$((n + 1))
  newkey "$WORK/$name-ca.key" "$keyspec"
  selfsigned "$OUT/$name-ca.crt" "$WORK/$name-ca.key" "$(ca_subject "$name")" "$sig" ca_ext "$(printf 0x1%02x "$n")"
  # The HSM's key is RSA 2048, as in CloudHSM.
  newkey "$WORK/$name-hsm.key" rsa2048
  issue "$OUT/$name-cluster.crt" "$WORK/$name-hsm.key" "$(hsm_subject "$n")" \
    "$OUT/$name-ca.crt" "$WORK/$name-ca.key" "$sig" cluster_ext "$(printf 0x2%02x "$n")"
done <<<"$PAIRS"

# The same cluster key signed exactly as the CloudHSM guide does it (no AKI extension).
issue_noext "$OUT/rsa2048-pkcs1-sha256-cluster-noext.crt" "$WORK/rsa2048-pkcs1-sha256-hsm.key" \
  "$(hsm_subject 1)" "$OUT/rsa2048-pkcs1-sha256-ca.crt" "$WORK/rsa2048-pkcs1-sha256-ca.key" sha256 0x301

# ---------------------------------------------------------------- negative cases
# Same subject DN as rsa2048-pkcs1-sha256-ca, different key (with and without an SKI).
newkey "$WORK/impostor.key" rsa2048
selfsigned "$OUT/impostor-ca.crt" "$WORK/impostor.key" "$(ca_subject rsa2048-pkcs1-sha256)" sha256 ca_ext 0x401
selfsigned "$OUT/impostor-noski-ca.crt" "$WORK/impostor.key" "$(ca_subject rsa2048-pkcs1-sha256)" sha256 ca_ext_noski 0x402

# Self-signed, but CA:FALSE.
newkey "$WORK/not-a-ca.key" p256
selfsigned "$OUT/not-a-ca.crt" "$WORK/not-a-ca.key" "/C=US/O=Example Corp/CN=not a CA" sha256 leaf_selfsigned_ext 0x403

# A CA certificate issued by another CA (rsa2048-pkcs1-sha256-ca), given alone.
newkey "$WORK/not-self-signed-ca.key" rsa2048
issue "$OUT/not-self-signed-ca.crt" "$WORK/not-self-signed-ca.key" "$(ca_subject "issued sub")" \
  "$OUT/rsa2048-pkcs1-sha256-ca.crt" "$WORK/rsa2048-pkcs1-sha256-ca.key" sha256 intermediate_ext 0x404

# ---------------------------------------------------------------- chain: root -> intermediate -> cluster
newkey "$WORK/chain-root.key" p384
selfsigned "$OUT/chain-root.crt" "$WORK/chain-root.key" "$(ca_subject "chain root")" sha384 ca_ext 0x501
newkey "$WORK/chain-intermediate.key" rsa2048
issue "$OUT/chain-intermediate.crt" "$WORK/chain-intermediate.key" "$(ca_subject "chain intermediate")" \
  "$OUT/chain-root.crt" "$WORK/chain-root.key" sha384 intermediate_ext 0x502
newkey "$WORK/chain-hsm.key" rsa2048
issue "$OUT/chain-cluster.crt" "$WORK/chain-hsm.key" "$(hsm_subject 9)" \
  "$OUT/chain-intermediate.crt" "$WORK/chain-intermediate.key" sha256 cluster_ext 0x503
# Trust anchor input as the CloudHSM guide wants it: intermediate first, root last.
{
  echo "# intermediate CA"
  cat "$OUT/chain-intermediate.crt"
  echo "# root CA"
  cat "$OUT/chain-root.crt"
} >"$OUT/chain-intermediate-root.pem"

# ---------------------------------------------------------------- expired CA (backdated validity)
# openssl >= 3.4 has -not_before/-not_after on req/x509; `openssl ca -startdate/-enddate` works
# everywhere, so use it.
ED="$EXPIRED_DIR"
mkdir -p "$ED/new"
: >"$ED/index.txt"
echo 0601 >"$ED/serial"
newkey "$WORK/expired-ca.key" rsa2048
openssl req -new -key "$WORK/expired-ca.key" -subj "/C=US/O=Example Corp/CN=expired customer CA" \
  -config "$CNF" -out "$WORK/expired-ca.csr"
openssl ca -batch -notext -selfsign -config "$CNF" -name expired_ca -extfile "$CNF" -extensions ca_ext \
  -keyfile "$WORK/expired-ca.key" -startdate 20100101000000Z -enddate 20150101000000Z \
  -in "$WORK/expired-ca.csr" -out "$OUT/expired-ca.crt" 2>"$WORK/ca.log" \
  || { cat "$WORK/ca.log" >&2; exit 1; }
newkey "$WORK/expired-hsm.key" rsa2048
# A cluster certificate issued (today) by the expired CA: the signature still verifies.
issue "$OUT/expired-ca-cluster.crt" "$WORK/expired-hsm.key" "$(hsm_subject 8)" \
  "$OUT/expired-ca.crt" "$WORK/expired-ca.key" sha256 cluster_ext 0x603

# Sanity: every pair verifies with openssl too (Ed25519 and P-224 included).
for ca in "$OUT"/*-ca.crt; do
  base="${ca%-ca.crt}"
  case "$(basename "$base")" in impostor|impostor-noski|not-self-signed|not-a|expired) continue ;; esac
  openssl verify -no-CApath -no-CAstore -partial_chain -CAfile "$ca" "$base-cluster.crt" >/dev/null
done
openssl verify -no-CApath -no-CAstore -CAfile "$OUT/chain-root.crt" -untrusted "$OUT/chain-intermediate.crt" \
  "$OUT/chain-cluster.crt" >/dev/null

echo "gen-fixtures: wrote $(ls "$OUT" | grep -c -E '\.(crt|pem)$') files to ${OUT#"$ROOT"/}" >&2
