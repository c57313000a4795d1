#!/usr/bin/env bash
# tests/package/symbols_test.sh LIBUDAX_SO INCLUDE_UDAX_DIR — libudax.so
# exports the public API and nothing else: every dynamic symbol it defines
# belongs to a class or function that include/udax/ marks UDAX_EXPORT (or is
# that class's vtable/typeinfo), and every name so marked is there. And its
# thread_locals use the initial-exec model (no __tls_get_addr: the fault
# handlers and the metadata lock touch them on every call).
set -euo pipefail
so=$1 inc=$2

# The names UDAX_EXPORT marks: "class [[...]] UDAX_EXPORT Name" or
# "UDAX_EXPORT Type Name(".
mapfile -t names < <(grep -h 'UDAX_EXPORT' "$inc"/*.h | grep -v '#define\|^ *//' |
  sed -E 's/.*(class|struct) .*UDAX_EXPORT +([A-Za-z_0-9]+).*/\2/; t; s/^[^(]*[ *&]([A-Za-z_0-9]+)\(.*/\1/')
[ ${#names[@]} -gt 5 ] || { echo "FAIL: found only ${#names[@]} UDAX_EXPORT names in $inc"; exit 1; }
alt=$(IFS='|'; echo "${names[*]}")

mapfile -t syms < <(nm -D --defined-only -C "$so" | sed -E 's/^[0-9a-f]+ [A-Za-z] //')
[ ${#syms[@]} -gt 0 ] || { echo "FAIL: $so defines no dynamic symbols"; exit 1; }
fail=0
for s in "${syms[@]}"; do
  if ! [[ $s =~ ^((typeinfo|typeinfo\ name|vtable)\ for\ )?udax::(fusefs::)?($alt)(::|\(|\[|$) ]]; then
    echo "FAIL: exported but not public API: $s"
    fail=1
  fi
done
all=$(printf '%s\n' "${syms[@]}")
for n in "${names[@]}"; do
  if ! grep -Eq "^udax::(fusefs::)?$n(::|\(|\[)" <<<"$all"; then
    echo "FAIL: marked UDAX_EXPORT but not exported: $n"
    fail=1
  fi
done
if nm -D --undefined-only "$so" | grep -q '__tls_get_addr'; then
  echo "FAIL: $so calls __tls_get_addr (a thread_local without -ftls-model=initial-exec)"
  fail=1
fi
[ $fail = 0 ] || exit 1
echo "ok: ${#syms[@]} symbols exported, all public API (${#names[@]} names: ${names[*]})"
