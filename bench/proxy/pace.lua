-- Fixed-rate pacing for wrk (wrk2 is not in Debian): every connection waits
-- `interval` ms between requests, so C connections give C*1000/interval req/s.
-- Set with: wrk ... -s pace.lua -- <interval_ms> <host header>
local interval = 16
function init(args)
  if args[1] then interval = tonumber(args[1]) end
  if args[2] then wrk.headers["Host"] = args[2] end
end
function delay()
  return interval
end
