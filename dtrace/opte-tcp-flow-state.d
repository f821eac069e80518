/* TCP connection state changes as the port's tracker sees them. */
#include "common.h"
#include "protos.d"

string states[int];

BEGIN
{
	states[0] = "CLOSED"; states[1] = "LISTEN"; states[2] = "SYN_SENT";
	states[3] = "SYN_RCVD"; states[4] = "ESTABLISHED"; states[5] = "CLOSE_WAIT";
	states[6] = "LAST_ACK"; states[7] = "FIN_WAIT_1"; states[8] = "FIN_WAIT_2";
	states[9] = "TIME_WAIT";
	printf("%-16s %-12s %-12s %s\n", "PORT", "CURR", "NEW", "FLOW");
}

sdt:xde::tcp-flow-state
{
	this->f = FLOW(arg1);
	printf("%-16s %-12s %-12s ", stringof(arg0), states[arg2], states[arg3]);
	FLOW_FMT(this->f);
	printf("\n");
}
