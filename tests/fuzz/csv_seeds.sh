#!/bin/sh
# Writes a seed corpus for fuzz_csv into folder $1 (`make fuzz-run` runs it into
# build/fuzz/corpus/csv): small CSV files, each behind fuzz_csv's option byte (see
# tests/fuzz/fuzz_csv.c: bit 0 header, bits 1-3 label column, bits 4-6 batch - 1, bit 7
# shuffle). Most are valid; a few show the rejected forms (quotes, ragged rows, text).
set -e
dir=$1
mkdir -p "$dir"

# seed NAME OPTION_BYTE TEXT (TEXT through printf %b, so \r \n \t work)
seed() {
    { printf "\\$(printf '%03o' "$2")"; printf '%b' "$3"; } > "$dir/$1"
}

# Option bytes: label column index k of {-1, 0, 1, -2, 2, 7, -9, INT_MIN} is k << 1.
seed last_header 17 'f1,f2,f3,label\n1.5,-2,3e2,0\n0,0.25,7,4\n-1,1,1,2\n'
seed last_plain 32 '0.1,0.2,1\n0.3,0.4,0\n0.5,0.6,1\n'
seed first_crlf 2 '3,1,2\r\n0,-0,4.5e-3\r\n\r\n1, 2 ,\t3\r\n'
seed middle 52 '10,1,20\n30,3.0,40\n50,0,60\n'
seed second_last 6 '1e-5,1e5,2,0.5\n+7,.5,1,-.25\n'
seed header_only 1 'a,b,label\n'
seed blank_lines 112 '\n  \n1,2,0\n\t\n3,4,1'
seed wide 64 '0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,3\n15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0,1\n'
seed many_rows 160 '1,0\n2,1\n3,2\n4,3\n5,4\n6,5\n7,6\n8,7\n9,8\n10,9\n11,0\n12,1\n'
seed big_values 0 '3.4e38,-3.4e38,1e-45,0\n1.17549435e-38,0x1p3,123456789012345678901234567890,1\n'
seed quoted 1 '"x","y","label"\n"1","2","0"\n'
seed ragged 0 '1,2,0\n3,4\n'
seed text 0 '1,abc,0\n'
seed nan_inf 0 'nan,inf,0\n-inf,1e999,1\n'
seed labels 0 '1,2,65535\n1,2,-1\n1,2,2.5\n'
