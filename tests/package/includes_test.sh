#!/usr/bin/env bash
# tests/package/includes_test.sh SOURCE_DIR — the public API is the only door:
#  * tools/ and bench/ include only include/udax/ headers ("udax/..."), files
#    of their own (tools/udax/, bench/; bench is the `udax bench` subcommand,
#    so it may include tools/udax/), and system or third-party headers <...>
#    that are not udax's internals (src/*/);
#  * the checker (src/check/, udax/check.h) sits above fs/: no other layer
#    of libudax includes it.
# (The udax target links libudax.so alone, without src/ on its include path,
# so an internal include does not even compile; this says which line is wrong.)
set -euo pipefail
src=$1
cd "$src"
internal=$(ls -d src/*/ | sed -E 's#src/([^/]+)/#\1#' | paste -sd'|')
fail=0
while IFS= read -r f; do
  dir=$(dirname "$f")
  while IFS=: read -r line text; do
    if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
      inc=${BASH_REMATCH[1]}
      if [[ $inc == udax/* ]]; then
        [ -f "include/$inc" ] && continue
      elif [ -f "$dir/$inc" ]; then
        real=$(realpath --relative-to=. "$dir/$inc")
        [[ $real == tools/* || $real == bench/* ]] && continue
      fi
      echo "FAIL: $f:$line: #include \"$inc\" is neither include/udax/ nor the tool's own"
      fail=1
    elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
      inc=${BASH_REMATCH[1]}
      if [[ $inc =~ ^($internal)/ ]]; then
        echo "FAIL: $f:$line: #include <$inc> reaches into src/"
        fail=1
      fi
    fi
  done < <(grep -n '#[[:space:]]*include' "$f" || true)
done < <(find tools bench -name '*.cc' -o -name '*.h' | sort)

# Only the checker itself and the layers above it (testing) use udax/check.h.
while IFS= read -r hit; do
  case $hit in
    src/check/*|src/testing/*) ;;
    *) echo "FAIL: $hit: a layer below the checker includes it"; fail=1 ;;
  esac
done < <(grep -rn --include='*.cc' --include='*.h' -E '#[[:space:]]*include[[:space:]]*"(udax/check\.h|check/)' src || true)

[ $fail = 0 ] || exit 1
echo "ok: tools/ and bench/ include only include/udax/ and their own files"
