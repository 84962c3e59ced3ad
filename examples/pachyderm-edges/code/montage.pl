#!/usr/bin/perl
# montage.pl IMAGES_DIR EDGES_DIR OUT_FILE: one PGM with a row per image, the image
# on the left and its edges on the right (Pachyderm's montage of both repos).
use strict;
use warnings;
(my $here = $0) =~ s{/[^/]*$}{};
require "$here/pgm.pl";

my ($images, $edges, $out) = @ARGV;
die "usage: montage.pl IMAGES_DIR EDGES_DIR OUT_FILE\n" unless defined $out;
my $gap = 4;
opendir my $dh, $images or die "$images: $!\n";
my @rows;
for my $name (sort grep { -f "$images/$_" } readdir $dh) {
    next unless -f "$edges/$name";
    push @rows, [read_pgm("$images/$name"), read_pgm("$edges/$name")];
}
die "no image has its edges yet\n" unless @rows;
my ($width, $height) = (0, 0);
for my $r (@rows) {
    my $w = $r->[0] + $gap + $r->[3];
    my $h = $r->[1] > $r->[4] ? $r->[1] : $r->[4];
    $width = $w if $w > $width;
    $height += $h + $gap;
}
$height -= $gap;
my @canvas = (128) x ($width * $height);
my $top = 0;
for my $r (@rows) {
    my ($w1, $h1, $p1, $w2, $h2, $p2) = @$r;
    for my $y (0 .. $h1 - 1) {
        @canvas[($top + $y) * $width .. ($top + $y) * $width + $w1 - 1] = @$p1[$y * $w1 .. $y * $w1 + $w1 - 1];
    }
    for my $y (0 .. $h2 - 1) {
        my $left = ($top + $y) * $width + $w1 + $gap;
        @canvas[$left .. $left + $w2 - 1] = @$p2[$y * $w2 .. $y * $w2 + $w2 - 1];
    }
    $top += ($h1 > $h2 ? $h1 : $h2) + $gap;
}
write_pgm($out, $width, $height, \@canvas);
print "montage of ", scalar(@rows), " image(s): ${width}x$height\n";
