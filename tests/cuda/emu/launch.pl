#!/usr/bin/perl
# tests/cuda/emu/launch.pl — turns a CUDA source into C++ for the CUDA emulator:
#   perl launch.pl cuda/foo.cu > build/emu/src/cuda/foo.cpp
#
#   k<<<grid, block[, smem[, stream]]>>>(args)   ->  igemu_launch(grid, block, smem, stream, k, args)
#   extern __shared__ T name[];                  ->  T *name = (T *)igemu_dynamic_smem();
#
# The kernel name may be a template-id (im2col_kernel<T>, copy_kernel<TO, float>) and the
# configuration and arguments may span lines; every newline is kept, and a #line directive
# names the original file, so diagnostics and debuggers point at cuda/foo.cu. Everything
# else is left to the emulator's headers (tests/cuda/emu/include/).
use strict;
use warnings;

my $path = shift @ARGV or die "usage: launch.pl FILE.cu\n";
open(my $in, '<', $path) or die "launch.pl: cannot read $path: $!\n";
my $src = do { local $/; <$in> };
close $in;

# Splits s at its top-level commas (outside (), [], {}).
sub split_top {
    my ($s) = @_;
    my @parts;
    my ($depth, $cur) = (0, '');
    for my $c (split //, $s) {
        if ($c =~ /[(\[{]/) { $depth++ }
        elsif ($c =~ /[)\]}]/) { $depth-- }
        if ($c eq ',' && $depth == 0) { push @parts, $cur; $cur = ''; next }
        $cur .= $c;
    }
    push @parts, $cur;
    return @parts;
}

my $launches = 0;
my $name_re = qr/[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*(?:\s*<(?:[^<>;{}]|<[^<>;{}]*>)*>)?/;
$src =~ s{($name_re)(\s*)<<<(.*?)>>>(\s*)\((\s*\))?}{
    my ($name, $ws1, $cfg, $ws2, $empty) = ($1, $2, $3, $4, $5);
    my @cfg = split_top($cfg);
    die "launch.pl: $path: launch of $name with " . scalar(@cfg) . " configuration values\n" if @cfg < 2 || @cfg > 4;
    push @cfg, ' 0' while @cfg < 4;
    $launches++;
    my $nl = () = ($ws1 . $ws2 . ($empty // '')) =~ /\n/g;
    'igemu_launch(' . join(',', @cfg) . ', ' . $name . ($empty ? ')' : ', ') . ("\n" x $nl);
}gse;

$src =~ s{extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?([^;\[\]]*?)\s*(\b[A-Za-z_]\w*)\s*\[\s*\]\s*;}{
    "$1 *$2 = ($1 *)igemu_dynamic_smem();"
}gse;

die "launch.pl: $path: a <<< that is not a kernel launch this script understands\n" if $src =~ /<<</;
(my $shown = $path) =~ s/"/\\"/g;
print "#line 1 \"$shown\"\n", $src;
