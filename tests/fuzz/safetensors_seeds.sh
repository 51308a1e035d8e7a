#!/bin/sh
# Writes a seed corpus for fuzz_safetensors into folder $1 (`make fuzz-run` runs it into
# build/fuzz/corpus/safetensors): small valid safetensors files (8-byte little-endian
# header length, JSON header, zero data bytes).
set -e
dir=$1
mkdir -p "$dir"

# le64 N: N as 8 little-endian bytes.
le64() {
    n=$1
    for _ in 1 2 3 4 5 6 7 8; do
        printf "\\$(printf '%03o' $((n & 255)))"
        n=$((n >> 8))
    done
}

# seed NAME HEADER DATA_BYTES
seed() {
    len=$(printf '%s' "$2" | wc -c)
    { le64 "$len"; printf '%s' "$2"; head -c "$3" /dev/zero; } > "$dir/$1"
}

seed empty '{}' 0
seed one '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8
seed meta '{"__metadata__":{"format":"pt","k\u00e9":"v\n\"q\""},"w":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}' 1
seed many '{"x":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]},"y":{"dtype":"F64","shape":[0,3],"data_offsets":[16,16]},"z":{"dtype":"I32","shape":[2,1,1],"data_offsets":[16,24]}}' 24
