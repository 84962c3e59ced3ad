#!/usr/bin/perl
# edges.pl IN_DIR OUT_DIR: the Sobel edge magnitude of every PGM image of IN_DIR (the
# datum's files at /pfs/images), written under the same name to OUT_DIR (/pfs/out).
use strict;
use warnings;
(my $here = $0) =~ s{/[^/]*$}{};
require "$here/pgm.pl";

my ($in, $out) = @ARGV;
die "usage: edges.pl IN_DIR OUT_DIR\n" unless defined $out;
opendir my $dh, $in or die "$in: $!\n";
for my $name (sort grep { -f "$in/$_" } readdir $dh) {
    my ($w, $h, $px) = read_pgm("$in/$name");
    my $at = sub {
        my ($x, $y) = @_;
        $x = 0 if $x < 0; $x = $w - 1 if $x >= $w;
        $y = 0 if $y < 0; $y = $h - 1 if $y >= $h;
        return $px->[$y * $w + $x];
    };
    my @edges;
    for my $y (0 .. $h - 1) {
        for my $x (0 .. $w - 1) {
            my $gx = $at->($x + 1, $y - 1) + 2 * $at->($x + 1, $y) + $at->($x + 1, $y + 1)
                   - $at->($x - 1, $y - 1) - 2 * $at->($x - 1, $y) - $at->($x - 1, $y + 1);
            my $gy = $at->($x - 1, $y + 1) + 2 * $at->($x, $y + 1) + $at->($x + 1, $y + 1)
                   - $at->($x - 1, $y - 1) - 2 * $at->($x, $y - 1) - $at->($x + 1, $y - 1);
            my $m = int(sqrt($gx * $gx + $gy * $gy));
            push @edges, $m > 255 ? 255 : $m;
        }
    }
    write_pgm("$out/$name", $w, $h, \@edges);
    print "edges of $name: ${w}x$h\n";
}
