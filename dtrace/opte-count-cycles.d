/* Time spent in the module's transmit and receive entry points, as histograms (ns). */
fbt:xde:xde_mc_tx:entry, fbt:xde:xde_rx:entry
{
	self->t[probefunc] = timestamp;
}

fbt:xde:xde_mc_tx:return, fbt:xde:xde_rx:return
/self->t[probefunc]/
{
	@[probefunc] = lquantize(timestamp - self->t[probefunc], 0, 20000, 500);
	self->t[probefunc] = 0;
}

tick-10s
{
	printa(@);
	trunc(@);
}
