export {
  Hypercall,
  MAX_EXTENTS,
  MEM_FLAGS_KNOWN,
  PagingOp,
  SharingOp,
  XENMEMF_populate_on_demand,
  XenMem,
} from './op-numbers.js';
export {
  HYPERCALL_OPS,
  type CurrentReservationRequest,
  type DecreaseReservationRequest,
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
export { decodeRequest, encodeRequest } from './request-codec.js';
export { decodeResponse, encodeResponse, type HypercallResponse } from './response-codec.js';
export { errorFromRc, errorResponse, NO_MESSAGE } from './errno.js';
export { dispatchHypercall, type HypercallHandler } from './dispatch.js';
export { HypercallClient } from './client.js';
