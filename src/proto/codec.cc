// proto/codec.cc — (codec.h is header-only; this unit keeps the layer a library.)
#include "proto/codec.h"
