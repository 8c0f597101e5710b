# Guest script of the VM rig (tests/vm/lib.sh): turn the blank label-less
# NVDIMM into a devdax namespace with its page map in RAM (-M mem), so that
# every guest booted on a copy of it finds /dev/dax0.0.  --map=dev would put
# each kernel's struct pages inside the shared device.
set -eu
ndctl create-namespace -f -e namespace0.0 -m devdax -M mem
test -c /dev/dax0.0
