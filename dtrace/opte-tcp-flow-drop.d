/* Segments the TCP tracker refused (an unexpected flag or state), with why. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-3s %-40s %s\n", "PORT", "DIR", "FLOW", "MSG");
}

sdt:xde::tcp-err
{
	this->f = FLOW(arg2);
	printf("%-16s %-3s ", stringof(arg1), DIR_STR(arg0));
	FLOW_FMT(this->f);
	printf(" %s\n", stringof(arg3));
}
