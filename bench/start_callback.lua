-- wrk script: POST start-callback, scheduled one day ahead, JSON body; every request carries
-- its own customer number and account, so the lookup index grows as in production.
-- wrk -t2 -c64 -d10s --latency -s bench/start_callback.lua http://127.0.0.1:18080/genesys/1/service/callback/bench
local desired = os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() + 86400)
local counter = 0
local prefix = tostring(math.random(100, 999))

request = function()
   counter = counter + 1
   local number = prefix .. string.format("%07d", (counter * 7919) % 10000000)
   local body = '{"_customer_number":"' .. number .. '","_desired_time":"' .. desired ..
      '","usr_customer_name":"Bob Markel","usr_account":"A' .. counter .. '"}'
   return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
