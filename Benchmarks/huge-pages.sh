# Sourced by the bench-* scripts: the benchmarks run with the heap in transparent huge pages, as the
# product's long-running commands do (they restart themselves so; Sources/hubcast/HugePages.swift),
# unless HUBCAST_HUGE_PAGES=0, GLIBC_TUNABLES is set already, or the kernel has them off.
if [ "${HUBCAST_HUGE_PAGES:-1}" != 0 ] && [ -z "${GLIBC_TUNABLES:-}" ] \
    && grep -qE '\[(always|madvise)\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
    export GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864
fi
