/* Packets a port dropped, with the reason (a layer's deny, a failed action, ...). */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-3s %-40s %s\n", "PORT", "DIR", "FLOW", "REASON");
}

sdt:xde::port-drop
{
	this->f = FLOW(arg2);
	printf("%-16s %-3s ", stringof(arg1), DIR_STR(arg0));
	FLOW_FMT(this->f);
	printf(" %s\n", stringof(arg3));
}
