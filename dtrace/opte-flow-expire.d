/* Flow-table entries expired by the periodic tick: port, table, flow. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-16s %s\n", "PORT", "FT NAME", "FLOW");
}

sdt:xde::flow-expired
{
	this->f = FLOW(arg2);
	printf("%-16s %-16s ", stringof(arg0), stringof(arg1));
	FLOW_FMT(this->f);
	printf("\n");
}
