#!/usr/bin/env python3
"""patch_libpython.py: copies a libpython and patches its Py_Version and/or its _PyRuntime.debug_offsets, for test_pyfuture.

usage: patch_libpython.py SRC DST [--version 0xHEX] [--debug-version 0xHEX] [--cookie TEXT8]

Makes an interpreter the reader has never seen out of a real one: the version it reports
(Py_Version, what poolprof reads) and its _Py_DebugOffsets' cookie and version (3.13+),
found by their .dynsym symbols and written at their file offsets (from the program headers).
"""
import argparse, shutil, struct

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--version", type=lambda s: int(s, 0))
ap.add_argument("--debug-version", type=lambda s: int(s, 0))
ap.add_argument("--cookie")
a = ap.parse_args()

data = bytearray(open(a.src, "rb").read())
assert data[:4] == b"\x7fELF" and data[4] == 2, "a 64-bit ELF file"
e_phoff, e_shoff = struct.unpack_from("<QQ", data, 0x20)
e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", data, 0x36)


def file_offset(vaddr):
    for i in range(e_phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 1 and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    raise SystemExit(f"address {vaddr:#x} is in no loaded segment")


def symbols():
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    for s in secs:
        if s[1] == 11:  # SHT_DYNSYM
            strtab = secs[s[6]]
            for off in range(s[4], s[4] + s[5], s[9]):
                st_name, _, _, _, st_value, _ = struct.unpack_from("<IBBHQQ", data, off)
                end = data.index(0, strtab[4] + st_name)
                yield data[strtab[4] + st_name:end].decode(), st_value


syms = dict(symbols())
if a.version is not None:
    struct.pack_into("<Q", data, file_offset(syms["Py_Version"]), a.version)
rt = file_offset(syms["_PyRuntime"])
if a.cookie is not None:
    data[rt:rt + 8] = a.cookie.encode()[:8].ljust(8, b"\0")
if a.debug_version is not None:
    struct.pack_into("<Q", data, rt + 8, a.debug_version)
open(a.dst, "wb").write(data)
shutil.copymode(a.src, a.dst)
