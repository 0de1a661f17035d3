#include "trace/trace-hw_ioguard.h"
