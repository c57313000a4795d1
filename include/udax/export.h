// udax/export.h — UDAX_EXPORT marks what libudax.so exports: the classes and
// functions of the public API (include/udax/). Everything else in the
// library is built with -fvisibility=hidden and stays inside it, and the
// linker's version script (src/libudax.map) keeps every name outside the
// udax namespace out of the dynamic symbol table.
#pragma once

#define UDAX_EXPORT [[gnu::visibility("default")]]
