// serve/direct_server.cc — SCAFFOLD (wip/core only): the helper building
// serve/ replaces it.
#include "udax/serve.h"
