package main

const serversEnv = "HEALTH_PROBE_BENCH_SERVERS"

func serveChild() int { return 0 }
