"""Benchmarks for citechat: ingest throughput, answer latency, cold start, HTTP, memory, and a LangChain peer."""
