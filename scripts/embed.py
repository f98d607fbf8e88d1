#!/usr/bin/env python3
"""Embed a text file as a NUL-terminated C string: embed.py IN OUT SYMBOL."""
import sys

src, dst, sym = sys.argv[1:4]
data = open(src, 'rb').read()
with open(dst, 'w') as out:
    out.write('/* generated from %s by scripts/embed.py */\n' % src)
    out.write('const char %s[] = {\n' % sym)
    for i in range(0, len(data), 16):
        out.write('\t' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',\n')
    out.write('\t0x00\n};\n')
