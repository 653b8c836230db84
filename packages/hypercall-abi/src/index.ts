export {
  DomCtl,
  Hypercall,
  Madvise,
  MAX_EXTENTS,
  MEM_FLAGS_KNOWN,
  PagingOp,
  SharingOp,
  TMEM_POOL_PERSIST,
  TMEM_POOL_SHARED,
  TmemCmd,
  XEN_DOMCTL_MEM_SHARING_CONTROL,
  XENMEMF_populate_on_demand,
  XenMem,
} from './op-numbers.js';
export {
  HYPERCALL_OPS,
  type ClaimPagesRequest,
  type CurrentReservationRequest,
  type DecreaseReservationRequest,
  type DomctlCreatedomainRequest,
  type DomctlDestroydomainRequest,
  type DomctlMaxMemRequest,
  type DomctlPausedomainRequest,
  type DomctlSharingControlRequest,
  type DomctlUnpausedomainRequest,
  type GetSharingFreedPagesRequest,
  type GetSharingSharedPagesRequest,
  type MadviseRequest,
  type MaximumGpfnRequest,
  type SharingAddPhysmapRequest,
  type SharingAuditRequest,
  type SharingDebugGfnRequest,
  type SharingForkRequest,
  type SharingForkResetRequest,
  type SharingRangeShareRequest,
  type TmemDestroyPoolRequest,
  type TmemFlushObjectRequest,
  type TmemFlushPageRequest,
  type TmemGetPageRequest,
  type TmemKey,
  type TmemNewPoolRequest,
  type TmemPutPageRequest,
  type HypercallOp,
  type HypercallRequest,
  type HypercallRequestOf,
  type IncreaseReservationRequest,
  type MaximumReservationRequest,
  type PagingEvictRequest,
  type PagingNominateRequest,
  type PagingPrepRequest,
  type PopulatePhysmapRequest,
  type ReadPageRequest,
  type SharingNominateGfnRequest,
  type SharingShareRequest,
  type WritePageRequest,
} from './request.js';
export {
  DECODE_ERRORS,
  FIELD_SIZE,
  OP_LAYOUTS,
  REQUEST_HEADER,
  RESPONSE_HEADER,
  type FieldRole,
  type FieldSpec,
  type FieldType,
  type OpLayout,
  type StructLayout,
  type TailSpec,
} from './layout.js';
export { hypercallRequestSchema, REQUEST_SCHEMAS, validateRequest } from './schema.js';
export { decodeRequest, encodeRequest, type EncodeOptions } from './request-codec.js';
export { decodeResponse, encodeResponse, type HypercallResponse } from './response-codec.js';
export { errorFromRc, errorResponse, NO_MESSAGE } from './errno.js';
export { dispatchHypercall, type HypercallHandler, type TmemOid } from './dispatch.js';
export { HypercallClient } from './client.js';
export { renderAbiDoc } from './abi-doc.js';
export { DEFAULT_FUZZ_BATCH, formatFuzzStats, fromHex, fuzzContext, fuzzHypervisor, mergeFuzzStats, mutate, newFuzzStats, randomGarbage, TICK, toHex, UNDECODED, validRequest, type FuzzContext, type FuzzFailure, type FuzzHandle, type FuzzOpStats, type FuzzOptions, type FuzzPage, type FuzzStats, type FuzzTarget } from './fuzz-buffers.js';
export { DEFAULT_GUEST_SHIM_OPTIONS, GuestShim, type ForkOptions, type GuestRegion, type GuestShimHypercalls, type GuestShimOptions, type MadviseAdvice, type MmapOptions } from './guest-shim.js';
