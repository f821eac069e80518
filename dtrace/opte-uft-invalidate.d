/*
 * UFT entries found stale (the port's epoch moved on: rules changed) and recompiled, and
 * TCP flows whose entries went with the connection's close.
 */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-3s %-6s %s\n", "PORT", "DIR", "EPOCH", "FLOW");
}

sdt:xde::uft-invalidate
{
	this->f = FLOW(arg2);
	printf("%-16s %-3s %-6u ", stringof(arg1), DIR_STR(arg0), arg3);
	FLOW_FMT(this->f);
	printf("\n");
}

sdt:xde::uft-tcp-closed
{
	this->f = FLOW(arg2);
	printf("%-16s %-3s %-6s ", stringof(arg1), DIR_STR(arg0), "CLOSED");
	FLOW_FMT(this->f);
	printf("\n");
}
