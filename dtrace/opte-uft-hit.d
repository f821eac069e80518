/* Hits of the unified flow table (the fast path): port, direction, flow, epoch. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-3s %-6s %s\n", "PORT", "DIR", "EPOCH", "FLOW");
}

sdt:xde::uft-hit
{
	this->f = FLOW(arg2);
	printf("%-16s %-3s %-6u ", stringof(arg1), DIR_STR(arg0), arg3);
	FLOW_FMT(this->f);
	printf("\n");
}
