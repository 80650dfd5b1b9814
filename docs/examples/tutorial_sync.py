import socket

from kv import KVClient, start_server

address = start_server()
client = KVClient(socket.create_connection(address))
print(client.set("greeting", "hello"))
print(client.get("greeting"))

# Output:
# OK
# hello
