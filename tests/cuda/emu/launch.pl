#!/usr/bin/perl
# tests/cuda/emu/launch.pl — turns a CUDA source into C++ for the CUDA emulator:
#   perl launch.pl cuda/foo.cu > build/emu/src/cuda/foo.cpp
#
#   k<<<grid, block[, smem[, stream]]>>>(args)   ->  igemu_launch(grid, block, smem, stream, k, args)
#   extern __shared__ T name[];                  ->  T *name = (T *)igemu_dynamic_smem();
#   __shared__ T name[N];  (in a function)       ->  static T name[N]; + poisoning per block
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

# Shared arrays inside functions: `__shared__ T name[N];` becomes a static array plus a call
# that fills it with 0xff bytes when the first thread of each block reaches it (so a read of
# shared memory nobody wrote in this block shows, as garbage would on a GPU). Brace depth
# tells function scope from namespace scope (where the header's `static` is all there is).
{
    (my $code = $src) =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')}{' ' x length($1)}gse;
    my @edits;
    while ($code =~ /(?<![\w])__shared__\s+([^;{}()=]*?)\s*\b([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*);/g) {
        my ($start, $end, $type, $name, $dims) = ($-[0], $+[0], $1, $2, $3);
        my $prefix = substr($code, 0, $start);
        my $depth = ($prefix =~ tr/{//) - ($prefix =~ tr/}//);
        next if $depth <= 0 || $type =~ /\bextern\b/;
        push @edits, [$start, $end, "static $type $name$dims; static unsigned long long igemu_gen_$name; "
                                    . "igemu_shared_begin(&$name, sizeof $name, &igemu_gen_$name);"];
    }
    for my $e (reverse @edits) {
        my ($start, $end, $text) = @$e;
        my $nl = () = substr($src, $start, $end - $start) =~ /\n/g;
        substr($src, $start, $end - $start) = $text . ("\n" x $nl);
    }
}

die "launch.pl: $path: a <<< that is not a kernel launch this script understands\n" if $src =~ /<<</;
(my $shown = $path) =~ s/"/\\"/g;
print "#line 1 \"$shown\"\n", $src;
