#!/usr/bin/perl
# tests/cuda/emu/tiny_idx.pl DIR — writes a tiny IDX image set (8x8, 4 classes; 48 training
# and 16 test images) into DIR for the Makefile's emu-train-check. The pixels are a fixed
# formula of the index with a class-dependent pattern, so a few steps learn something.
use strict;
use warnings;
my $dir = shift or die "usage: tiny_idx.pl DIR\n";
for my $set (["train", 48, 0], ["t10k", 16, 99]) {
    my ($prefix, $n, $k0) = @$set;
    open my $img, ">:raw", "$dir/$prefix-images-idx3-ubyte" or die "$dir: $!\n";
    open my $lab, ">:raw", "$dir/$prefix-labels-idx1-ubyte" or die "$dir: $!\n";
    print $img pack("N4", 0x803, $n, 8, 8);
    print $lab pack("N2", 0x801, $n);
    for my $i (0 .. $n - 1) {
        my $k = $k0 + $i;
        print $lab chr($k % 4);
        print $img chr(($k * 37 + $_ * 5 + ($k % 4) * 40 * (($_ % 8) > 3)) % 256) for 0 .. 63;
    }
    close $img or die;
    close $lab or die;
}
