/* Each control command entering the module: the envelope, and what it copies in. */
#include "common.h"
#include "protos.d"

fbt:xde:xde_ioc_opte_cmd:entry
{
	this->ioc = (opte_cmd_ioctl_t *)copyin(arg0, sizeof (opte_cmd_ioctl_t));
	printf("cmd %u api %u req_len %u resp_len %u\n", this->ioc->cmd,
	    this->ioc->api_version, this->ioc->req_len, this->ioc->resp_len);
	self->in = 1;
}

fbt::ddi_copyin:entry
/self->in/
{
	printf("  ddi_copyin %u bytes\n", arg2);
}

fbt:xde:xde_ioc_opte_cmd:return
/self->in/
{
	printf("  => %d\n", arg1);
	self->in = 0;
}
