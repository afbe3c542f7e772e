# Writes the TEST-ONLY PyCryptodome fixture exactly as the prototype's
# keygen scripts did. Debian's python3-pycryptodome installs the module as
# "Cryptodome" for Debian's own python3.11:
#   /usr/bin/python3.11 internal/testkeys/gen/pycryptodome.py
from Cryptodome import Random
from Cryptodome.PublicKey import RSA

secret_code = "test-only-passphrase"
key = RSA.generate(4096, Random.new().read)
d = "internal/testkeys/testdata/"
with open(d + "pycryptodome-legacy.pem", "wb") as f:
    f.write(key.exportKey(format="PEM", passphrase=secret_code, pkcs=8))
with open(d + "pycryptodome-legacy.pub.pem", "wb") as f:
    f.write(key.publickey().exportKey(format="PEM"))
