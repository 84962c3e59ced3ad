#!/bin/sh
echo "$@" "$INPUT_COUNT"
