#!/bin/sh
# Writes a seed corpus for fuzz_cifar into folder $1 (`make fuzz-run` runs it into
# build/fuzz/corpus/cifar): one or two valid CIFAR-10 / CIFAR-100 records behind
# fuzz_cifar's option byte (see tests/fuzz/fuzz_cifar.c: bit 0 CIFAR-100, bits 1-2 how it
# is opened, bits 3-5 batch - 1, bit 6 shuffle), and a short file.
set -e
dir=$1
mkdir -p "$dir"

# byte N: one byte of value N.
byte() { printf "\\$(printf '%03o' "$1")"; }
# pixels V: 3072 bytes of value V.
pixels() { head -c 3072 /dev/zero | tr '\000' "\\$(printf '%03o' "$1")"; }

{ byte 0; byte 7; pixels 128; } > "$dir/c10_one"
{ byte 10; byte 0; pixels 0; byte 9; pixels 255; } > "$dir/c10_two_loader"
{ byte 4; byte 2; pixels 17; } > "$dir/c10_open_train"
{ byte 6; byte 5; pixels 200; byte 1; pixels 3; } > "$dir/c10_open_test"
{ byte 1; byte 19; byte 99; pixels 64; } > "$dir/c100_one"
{ byte 3; byte 0; byte 0; pixels 1; byte 7; byte 42; pixels 254; } > "$dir/c100_two"
{ byte 5; byte 4; byte 40; pixels 90; } > "$dir/c100_open_train"
{ byte 79; byte 10; byte 50; pixels 33; } > "$dir/c100_open_test_shuffle"
{ byte 0; byte 3; head -c 100 /dev/zero; } > "$dir/short"
