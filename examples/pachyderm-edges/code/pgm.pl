# PGM (P2 or P5, 8-bit) read and write with core Perl only: the image has no Python.
use strict;
use warnings;

sub read_pgm {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!\n";
    local $/;
    my $data = <$fh>;
    close $fh;
    my @head;
    while (@head < 4) {
        $data =~ /\G(?:\s|#[^\n]*\n)*/gc;
        $data =~ /\G(\S+)/gc or die "$path: not a PGM image\n";
        push @head, $1;
    }
    my ($magic, $w, $h, $max) = @head;
    die "$path: not an 8-bit PGM image (P2 or P5)\n"
        unless $magic =~ /^P[25]$/ && "$w$h$max" =~ /^\d+$/ && $max > 0 && $max < 256;
    die "$path: larger than 4096x4096\n" if $w > 4096 || $h > 4096;
    my @px = $magic eq 'P5'
        ? unpack('C*', substr($data, pos($data) + 1, $w * $h))
        : (substr($data, pos($data)) =~ /(\d+)/g);
    die "$path: fewer pixels than ${w}x$h\n" if @px < $w * $h;
    @px = map { int($_ * 255 / $max) } @px[0 .. $w * $h - 1];
    return ($w, $h, \@px);
}

sub write_pgm {
    my ($path, $w, $h, $px) = @_;
    open my $fh, '>:raw', $path or die "$path: $!\n";
    print {$fh} "P5\n$w $h\n255\n", pack('C*', @$px);
    close $fh or die "$path: $!\n";
}

1;
