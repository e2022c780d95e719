-- wrk script: POST start-callback, scheduled one day ahead (spread over a day of slots), JSON body; every request carries
-- its own customer number and account, so the lookup index grows as in production.
-- wrk -t2 -c64 -d10s --latency -s bench/start_callback.lua http://127.0.0.1:18080/genesys/1/service/callback/bench
local base = os.time() + 86400
local counter = 0
local prefix = tostring(math.random(100, 999))

request = function()
   counter = counter + 1
   local number = prefix .. string.format("%07d", (counter * 7919) % 10000000)
   -- Desired times spread over the 288 five-minute slots of a day.
   local desired = os.date("!%Y-%m-%dT%H:%M:%S.000Z", base + (counter % 288) * 300)
   local body = '{"_customer_number":"' .. number .. '","_desired_time":"' .. desired ..
      '","usr_customer_name":"Bob Markel","usr_account":"A' .. counter .. '"}'
   return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
