-- wrk script for bench/throughput.py: POST one JSON body (read from the file given after --)
-- on every request, with any further "Name: value" arguments as headers, then print one
-- BENCH line of JSON with the counts and latency percentiles.

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   for i = 2, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
      '"write_errors": %d, "status_errors": %d, "timeout_errors": %d, ' ..
      '"p50_us": %.0f, "p99_us": %.0f, "max_us": %.0f}\n',
      summary.requests, summary.duration, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
