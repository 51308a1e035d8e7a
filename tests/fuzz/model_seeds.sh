#!/bin/sh
# Writes a seed corpus for fuzz_model into folder $1 (`make fuzz-run` runs it into
# build/fuzz/corpus/model): model descriptions from README.md ("Model files") and the
# tests, each behind fuzz_model's two geometry bytes (see tests/fuzz/fuzz_model.c).
set -e
dir=$1
mkdir -p "$dir"

# geom C H W CLASSES TRAIN: the two bytes for that input geometry (C 1..4, H and W 1..32,
# CLASSES 1..8, TRAIN 0 or 1).
geom() {
    b0=$(( ($1 - 1) | ($5 << 2) | (($2 - 1) << 3) ))
    b1=$(( ($3 - 1) | (($4 - 1) << 5) ))
    printf "\\$(printf '%03o' "$b0")\\$(printf '%03o' "$b1")"
}

# seed NAME C H W CLASSES TRAIN TEXT
seed() {
    { geom "$2" "$3" "$4" "$5" "$6"; printf '%s' "$7"; } > "$dir/$1"
}

# The zoo's cnn as README.md writes it (28x28 grey images).
seed cnn 1 28 28 8 0 '# cnn.txt: the zoo'"'"'s cnn
conv 32 3 pad=1      # Conv2d(in, 32, 3, padding=1)
relu
maxpool 2
conv 64 3 pad=1
relu
maxpool 2
flatten
linear 128
relu
linear classes
'
# A smaller cnn with every option of conv and pool.
seed small 3 16 12 5 1 'conv 8 3 stride=2 pad=1
conv 16 3x1 dilation=2 groups=4 pad=0x1 bias=0
	leaky_relu 0.2
maxpool 3 stride=2 ceil=1
avgpool 2 pad=1 ceil=0

   # nothing here
adaptive_avgpool 2 3
flatten
bn
layernorm eps=1e-6
linear 20 bias=0
gelu
dropout 0.1
linear classes
'
# resnet8 in the README's form (resnet20 has three blocks per width).
seed resnet8 3 16 16 8 1 'conv 16 3 pad=1 bias=0
bn
relu
block 16
block 32 stride=2
block 64 stride=2
adaptive_avgpool 1
flatten
linear classes
'
# resnet20 exactly as README.md describes it, on small images.
seed resnet20 3 8 8 8 0 'conv 16 3 pad=1 bias=0
bn
relu
block 16
block 16
block 16
block 32 stride=2
block 32
block 32
block 64 stride=2
block 64
block 64
adaptive_avgpool 1
flatten
linear classes
'
seed head 2 5 5 3 0 'conv 4 1
bn
silu
conv classes 1
adaptive_avgpool 1
flatten
softmax
'
seed mlp 1 8 8 4 0 'flatten
linear 32
sigmoid
dropout
linear classes
tanh
'
seed crlf 4 7 9 2 1 "$(printf 'conv 4 3 pad=1\r\nrelu\r\nmaxpool 2\r\nflatten\r\nlinear classes\r\n')"
# Wrong descriptions: the error paths.
seed unknown 1 28 28 8 0 'conv 8 3

# c
convv 8 3
'
seed noflatten 1 28 28 8 0 'conv 32 3
linear 10
'
seed nolayers 1 4 4 1 0 '# only a comment

'
