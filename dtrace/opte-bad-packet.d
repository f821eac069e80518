/* Packets the parser refused: port (or "unknown" on the underlay), direction, why. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-3s %-18s %s\n", "PORT", "DIR", "MBLK", "MSG");
}

sdt:xde::bad-packet
{
	printf("%-16s %-3s 0x%-16p %s (%u bytes)\n", stringof(arg0), DIR_STR(arg1), arg2,
	    stringof(arg3), arg4);
}
