/*
 * Every packet through a port: the port, direction, epoch, the flow key it arrived with
 * and the one it left with, and which path took it (FAST: the compiled UFT entry; SLOW:
 * the layers; DROP: neither).
 */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-3s %-6s %-5s %s\n", "NAME", "DIR", "EPOCH", "PATH", "FLOW BEFORE -> FLOW AFTER");
}

sdt:xde::port-process-entry
{
	self->epoch = arg3;
}

sdt:xde::port-process-return
{
	this->before = FLOW(arg2);
	this->after = FLOW(arg3);
	printf("%-16s %-3s %-6u %-5s ", stringof(arg1), DIR_STR(arg0), self->epoch, PATH_STR(arg4));
	FLOW_FMT(this->before);
	printf(" => ");
	FLOW_FMT(this->after);
	printf("\n");
	self->epoch = 0;
}
