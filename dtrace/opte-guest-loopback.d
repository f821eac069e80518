/* Packets from one guest to another on the same sled, never leaving it. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-40s %-16s %s\n", "FLOW", "SRC PORT", "DST PORT");
}

sdt:xde::guest-loopback
{
	this->f = FLOW(arg0);
	FLOW_FMT(this->f);
	printf(" %-16s %s\n", stringof(arg1), stringof(arg2));
}
