-- Sets the Host header (wrk's -H "Host: ..." works too; this keeps the command lines uniform).
function init(args)
  if args[1] then wrk.headers["Host"] = args[1] end
end
