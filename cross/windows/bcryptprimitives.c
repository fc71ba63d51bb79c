/*
 * A stand-in for Windows' bcryptprimitives.dll, for wine 8.0 only (Debian 12's
 * wine). Rust's std imports ProcessPrng from that DLL to seed its hashers and
 * fill random buffers; wine provides the DLL only from 8.13 on, so without this
 * stub no Rust program for x86_64-pc-windows-gnu even starts under wine 8.0.
 *
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32's SystemFunction036,
 * which wine implements with the host's random source). Never ship this DLL: a
 * real Windows has its own. Built by cross/setup.sh with mingw-w64:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *       bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
