#!/usr/bin/env bash
# Regenerates the committed seed corpus in fuzz/seeds/<target>/ from fresh keys, then minimises
# each target's seeds with `cargo fuzz cmin` (keeping the descriptive file names).
#
#   fuzz/gen-seeds.sh            # generate + minimise (needs cargo-fuzz, see fuzz/ci.sh)
#   fuzz/gen-seeds.sh --no-cmin  # generate only
#
# Valid kubelet client CSRs (P-256, P-384, RSA-2048 PKCS#1 and PSS, Ed25519) and near-misses
# (wrong O, two O, two CNs, no node prefix, bad node name, DNS/IP/email/URI/registeredID/
# otherName SANs, bad signature, serving-shaped, P-521, SHA-1, RSA-1024), each in the format
# its target reads:
#   parse_csr      PEM text
#   parse_csr_der  DER
#   decide         two control bytes (see fuzz_targets/decide.rs) + DER, or + PEM text
# Made with OpenSSL (which also makes tests/fixtures/policy); the keys are throwaway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cmin=1
[[ "${1:-}" == "--no-cmin" ]] && cmin=0

command -v openssl >/dev/null || { echo "gen-seeds: openssl is required" >&2; exit 1; }
work=target/gen-seeds
rm -rf "$work" seeds
mkdir -p "$work" seeds/parse_csr seeds/parse_csr_der seeds/decide
cnf=../tests/fixtures/policy/min.cnf
node="/O=system:nodes/CN=system:node:worker-1"

key() { # name genpkey-args...
  local name=$1; shift
  openssl genpkey "$@" -out "$work/$name.key" 2>/dev/null
}
# The P-256 key is the decide target's fixed re-signing key (RESIGN_P256_SCALAR in src/lib.rs,
# the bytes 1..32), written as SEC1 DER for OpenSSL, so its requests also serve as
# certificationRequestInfo seeds that the target signs again after mutating them.
printf '\x30\x31\x02\x01\x01\x04\x20' >"$work/p256.sec1"
for i in $(seq 1 32); do printf "\\$(printf '%03o' "$i")"; done >>"$work/p256.sec1"
printf '\xa0\x0a\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07' >>"$work/p256.sec1"
openssl ec -inform DER -in "$work/p256.sec1" -out "$work/p256.key" 2>/dev/null
key p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
key p521 -algorithm EC -pkeyopt ec_paramgen_curve:P-521
key ed25519 -algorithm ed25519
key rsa2048 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
key rsa1024 -algorithm RSA -pkeyopt rsa_keygen_bits:1024

csr() { # name key subject [openssl req args...] -> $work/name.der
  local name=$1 k=$2 subj=$3; shift 3
  openssl req -new -config "$cnf" -key "$work/$k.key" -subj "$subj" -outform DER \
    -out "$work/$name.der" "$@"
}
csr valid-p256 p256 "$node" -sha256
csr valid-p384 p384 "$node" -sha384
csr valid-rsa2048 rsa2048 "$node" -sha256
csr valid-rsa2048-pss rsa2048 "$node" -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
csr valid-ed25519 ed25519 "$node"
csr wrong-o p256 "/O=system:masters/CN=system:node:worker-1" -sha256
csr two-o p256 "/O=system:nodes/O=system:masters/CN=system:node:worker-1" -sha256
csr two-cn p256 "/O=system:nodes/CN=system:admin/CN=system:node:worker-1" -sha256
csr no-node-prefix p256 "/O=system:nodes/CN=worker-1" -sha256
csr bad-node-name p256 "/O=system:nodes/CN=system:node:Worker_1" -sha256
csr dns-san p256 "$node" -sha256 -addext "subjectAltName=DNS:worker-1.example"
csr ip-san p256 "$node" -sha256 -addext "subjectAltName=IP:10.0.0.1"
csr email-san p256 "$node" -sha256 -addext "subjectAltName=email:a@example.com"
csr uri-san p256 "$node" -sha256 -addext "subjectAltName=URI:spiffe://example/node"
csr rid-san p256 "$node" -sha256 -addext "subjectAltName=RID:1.2.3.4"
csr othername-san p256 "$node" -sha256 -addext "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:node@example"
csr serving p256 "$node" -sha256 -addext "subjectAltName=DNS:worker-1,IP:10.0.0.1"
csr key-usage-ext p256 "$node" -sha256 -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=clientAuth"
csr p521 p521 "$node" -sha512
csr sha1-rsa rsa2048 "$node" -sha1
csr rsa1024 rsa1024 "$node" -sha256
# The last signature byte flipped.
cp "$work/valid-p256.der" "$work/bad-signature.der"
last=$(( $(stat -c %s "$work/bad-signature.der") - 1 ))
byte=$(od -An -tu1 -j "$last" -N1 "$work/bad-signature.der" | tr -d ' ')
printf "$(printf '\\%03o' $(( byte ^ 1 )))" |
  dd of="$work/bad-signature.der" bs=1 seek="$last" conv=notrunc status=none

# decide control bytes: byte 0 = signer (bits 0-1) | usages (bit 2 digital signature, 3 key
# encipherment, 4 client auth, 5 server auth, 6 cert sign, 7 "Client Auth"); byte 1 = requester
# (0 bootstrap, 1 system:node:worker-1) | groups << 2 (0 nodes, 1 bootstrappers) | request mode
# << 5 (0 DER, 1 PEM text, 2 certificationRequestInfo to re-sign) | 0x80 already Approved.
legacy=$(( 0x04 | 0x08 | 0x10 ))  # kubelet bootstrap usages
modern=$(( 0x04 | 0x10 ))         # v1.27+ without key encipherment
serving_usages=$(( 0x04 | 0x08 | 0x20 ))
decide() { # seed-name der-name byte0 byte1
  local out="seeds/decide/$1"
  printf "$(printf '\\%03o\\%03o' "$3" "$4")" >"$out"
  if (( $4 & 0x20 )); then
    openssl req -inform DER -in "$work/$2.der" -outform PEM >>"$out"
  else
    cat "$work/$2.der" >>"$out"
  fi
}

for f in "$work"/*.der; do
  name=$(basename "$f" .der)
  cp "$f" "seeds/parse_csr_der/$name"
  openssl req -inform DER -in "$f" -outform PEM -out "seeds/parse_csr/$name"
  # Every request as a renewal by the node itself with the bootstrap usages; the valid ones
  # are authorized, and the fuzzer starts next to that branch.
  decide "$name" "$name" "$legacy" 0x01
done
for k in p256 p384 rsa2048 rsa2048-pss ed25519; do
  decide "valid-$k-bootstrap-modern" "valid-$k" "$modern" $(( 0x00 | 1 << 2 ))
done
decide valid-p256-pem valid-p256 "$legacy" $(( 0x01 | 0x20 ))
decide valid-p256-server-auth valid-p256 $(( legacy | 0x20 )) 0x01
decide valid-p256-cert-sign valid-p256 $(( modern | 0x40 )) 0x01
decide valid-p256-serving-signer valid-p256 $(( 2 | serving_usages )) 0x01
decide serving-serving-signer serving $(( 2 | serving_usages )) 0x01
decide valid-p256-other-signer valid-p256 $(( 3 | legacy )) 0x01
decide valid-p256-approved valid-p256 "$legacy" $(( 0x01 | 0x80 ))

# Re-sign mode (byte 1 bits 5-6 = 2): the certificationRequestInfo of each P-256 request.
tbs() { # der-file -> the first inner element (certificationRequestInfo), raw
  local line off hl l
  line=$(openssl asn1parse -inform DER -in "$1" | sed -n 2p)
  off=$(sed -E 's/^ *([0-9]+):.*/\1/' <<<"$line")
  hl=$(sed -E 's/.*hl= *([0-9]+).*/\1/' <<<"$line")
  l=$(sed -E 's/.* l= *([0-9]+).*/\1/' <<<"$line")
  dd if="$1" bs=1 skip="$off" count=$((hl + l)) status=none
}
for f in "$work"/*.der; do
  name=$(basename "$f" .der)
  openssl req -inform DER -in "$f" -noout -text 2>/dev/null | grep -q "ASN1 OID: prime256v1" ||
    continue
  [[ $name == bad-signature ]] && continue
  out="seeds/decide/tbs-$name"
  printf "$(printf '\\%03o\\%03o' "$legacy" $(( 0x01 | 0x40 )))" >"$out"
  tbs "$f" >>"$out"
done

if (( cmin )); then
  # cargo fuzz cmin renames what it keeps to content hashes; keep our names for the survivors.
  for t in parse_csr parse_csr_der decide; do
    tmp="$work/cmin-$t"
    rm -rf "$tmp" && cp -r "seeds/$t" "$tmp"
    cargo fuzz cmin -s none --debug-assertions "$t" "$tmp" >"$work/cmin-$t.log" 2>&1 ||
      { tail -20 "$work/cmin-$t.log" >&2; exit 1; }
    before=$(ls "seeds/$t" | wc -l)
    for f in "seeds/$t"/*; do
      [[ -e "$tmp/$(sha1sum <"$f" | cut -d' ' -f1)" ]] || rm "$f"
    done
    echo "gen-seeds: $t: $before seeds, $(ls "seeds/$t" | wc -l) after cmin"
  done
fi
du -sh seeds
