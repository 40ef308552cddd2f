/* empty_preload.c: a shared library that does nothing, preloaded by bench/fanout.py to measure what LD_PRELOAD of any library costs a process image on this machine (the floor under the shim's own cost). */
void poolprof_empty_preload(void);
void poolprof_empty_preload(void)
{
}
