import { DOMID_SELF, Errno } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { renderAbiDoc } from './abi-doc.js';
import { OP_LAYOUTS, type FieldSpec, type OpLayout } from './layout.js';
import * as opNumbers from './op-numbers.js';

// ---- Xen's numbers, transcribed ---------------------------------------------------------------
//
// Names and values only, transcribed by hand from Xen's public headers (xen-project/xen,
// xen/include/public), so that a number here can be checked against something other than itself.
// Each number lives in a space, named by the Xen number that selects it: 'hypercall' for the
// hypercall numbers, '__HYPERVISOR_memory_op' for the XENMEM_* sub-operations of memory_op,
// 'XENMEM_sharing_op' for the sharing op's `op` values, and so on. A space lists every number Xen
// defines in it, not only those pagevisor uses, so that a pagevisor-only number can be checked
// not to collide with any of them; numbers Xen has retired (commented out or removed) stay listed
// as `retired`, since Xen does not reuse them either.
//
// Versions: the current upstream headers (xen.h up to __HYPERVISOR_hypfs_op; memory.h up to
// XENMEM_acquire_resource, with the VM-fork sharing ops 9 and 10 of Xen 4.14; domctl.h up to
// XEN_DOMCTL_get_domain_state). tmem.h is the last one before Xen 4.13 removed tmem: its commands
// now apply only to __XEN_INTERFACE_VERSION__ < 0x00041300, and __HYPERVISOR_tmem_op keeps 38.

const XEN_H = 'xen/include/public/xen.h';
const MEMORY_H = 'xen/include/public/memory.h';
const DOMCTL_H = 'xen/include/public/domctl.h';
const TMEM_H = 'xen/include/public/tmem.h';
const ERRNO_H = 'xen/include/public/errno.h';
type XenHeader = typeof XEN_H | typeof MEMORY_H | typeof DOMCTL_H | typeof TMEM_H | typeof ERRNO_H;

/** One number of Xen's public headers. */
interface XenNumber {
  readonly name: string;
  readonly value: number;
  /** The header that defines it. */
  readonly header: XenHeader;
  /** Name of the Xen number selecting the space it lives in ('hypercall' for hypercall numbers). */
  readonly space: string;
  /** Xen no longer defines it, but the number stays taken. */
  readonly retired?: true;
}

/** The numbers `header` defines in `space`, in the header's order, then those it has retired. */
function fromHeader(
  header: XenHeader,
  space: string,
  defined: Readonly<Record<string, number>>,
  retired: Readonly<Record<string, number>> = {},
): XenNumber[] {
  return [
    ...Object.entries(defined).map(([name, value]) => ({ name, value, header, space })),
    ...Object.entries(retired).map(([name, value]) => ({ name, value, header, space, retired: true as const })),
  ];
}

const XEN_NUMBERS: readonly XenNumber[] = [
  ...fromHeader(XEN_H, 'hypercall', {
    __HYPERVISOR_set_trap_table: 0,
    __HYPERVISOR_mmu_update: 1,
    __HYPERVISOR_set_gdt: 2,
    __HYPERVISOR_stack_switch: 3,
    __HYPERVISOR_set_callbacks: 4,
    __HYPERVISOR_fpu_taskswitch: 5,
    __HYPERVISOR_sched_op_compat: 6,
    __HYPERVISOR_platform_op: 7,
    __HYPERVISOR_set_debugreg: 8,
    __HYPERVISOR_get_debugreg: 9,
    __HYPERVISOR_update_descriptor: 10,
    __HYPERVISOR_memory_op: 12,
    __HYPERVISOR_multicall: 13,
    __HYPERVISOR_update_va_mapping: 14,
    __HYPERVISOR_set_timer_op: 15,
    __HYPERVISOR_event_channel_op_compat: 16,
    __HYPERVISOR_xen_version: 17,
    __HYPERVISOR_console_io: 18,
    __HYPERVISOR_physdev_op_compat: 19,
    __HYPERVISOR_grant_table_op: 20,
    __HYPERVISOR_vm_assist: 21,
    __HYPERVISOR_update_va_mapping_otherdomain: 22,
    __HYPERVISOR_iret: 23,
    __HYPERVISOR_vcpu_op: 24,
    __HYPERVISOR_set_segment_base: 25,
    __HYPERVISOR_mmuext_op: 26,
    __HYPERVISOR_xsm_op: 27,
    __HYPERVISOR_nmi_op: 28,
    __HYPERVISOR_sched_op: 29,
    __HYPERVISOR_callback_op: 30,
    __HYPERVISOR_xenoprof_op: 31,
    __HYPERVISOR_event_channel_op: 32,
    __HYPERVISOR_physdev_op: 33,
    __HYPERVISOR_hvm_op: 34,
    __HYPERVISOR_sysctl: 35,
    __HYPERVISOR_domctl: 36,
    __HYPERVISOR_kexec_op: 37,
    __HYPERVISOR_tmem_op: 38,
    __HYPERVISOR_argo_op: 39,
    __HYPERVISOR_xenpmu_op: 40,
    __HYPERVISOR_dm_op: 41,
    __HYPERVISOR_hypfs_op: 42,
    __HYPERVISOR_arch_0: 48,
    __HYPERVISOR_arch_1: 49,
    __HYPERVISOR_arch_2: 50,
    __HYPERVISOR_arch_3: 51,
    __HYPERVISOR_arch_4: 52,
    __HYPERVISOR_arch_5: 53,
    __HYPERVISOR_arch_6: 54,
    __HYPERVISOR_arch_7: 55,
  }),
  ...fromHeader(XEN_H, 'domid_t', { DOMID_SELF: 0x7ff0 }),

  ...fromHeader(
    MEMORY_H,
    '__HYPERVISOR_memory_op',
    {
      XENMEM_increase_reservation: 0,
      XENMEM_decrease_reservation: 1,
      XENMEM_maximum_ram_page: 2,
      XENMEM_current_reservation: 3,
      XENMEM_maximum_reservation: 4,
      XENMEM_machphys_mfn_list: 5,
      XENMEM_populate_physmap: 6,
      XENMEM_add_to_physmap: 7,
      XENMEM_memory_map: 9,
      XENMEM_machine_memory_map: 10,
      XENMEM_exchange: 11,
      XENMEM_machphys_mapping: 12,
      XENMEM_set_memory_map: 13,
      XENMEM_maximum_gpfn: 14,
      XENMEM_remove_from_physmap: 15,
      XENMEM_set_pod_target: 16,
      XENMEM_get_pod_target: 17,
      XENMEM_get_sharing_freed_pages: 18,
      XENMEM_get_sharing_shared_pages: 19,
      XENMEM_paging_op: 20,
      XENMEM_access_op: 21,
      XENMEM_sharing_op: 22,
      XENMEM_add_to_physmap_batch: 23,
      XENMEM_claim_pages: 24,
      XENMEM_machphys_compat_mfn_list: 25,
      XENMEM_get_vnumainfo: 26,
      XENMEM_reserved_device_memory_map: 27,
      XENMEM_acquire_resource: 28,
    },
    { XENMEM_translate_gpfn_list: 8 },
  ),
  ...fromHeader(MEMORY_H, 'XENMEM_sharing_op', {
    XENMEM_sharing_op_nominate_gfn: 0,
    XENMEM_sharing_op_nominate_gref: 1,
    XENMEM_sharing_op_share: 2,
    XENMEM_sharing_op_debug_gfn: 3,
    XENMEM_sharing_op_debug_mfn: 4,
    XENMEM_sharing_op_debug_gref: 5,
    XENMEM_sharing_op_add_physmap: 6,
    XENMEM_sharing_op_audit: 7,
    XENMEM_sharing_op_range_share: 8,
    XENMEM_sharing_op_fork: 9,
    XENMEM_sharing_op_fork_reset: 10,
  }),
  ...fromHeader(MEMORY_H, 'XENMEM_sharing_op rc', {
    XENMEM_SHARING_OP_S_HANDLE_INVALID: -10,
    XENMEM_SHARING_OP_C_HANDLE_INVALID: -9,
  }),
  ...fromHeader(MEMORY_H, 'XENMEM_paging_op', {
    XENMEM_paging_op_nominate: 0,
    XENMEM_paging_op_evict: 1,
    XENMEM_paging_op_prep: 2,
  }),
  ...fromHeader(MEMORY_H, 'xen_memory_reservation.mem_flags', {
    XENMEMF_populate_on_demand: 1 << 16,
    XENMEMF_exact_node_request: 1 << 17,
    XENMEMF_vnode: 1 << 18,
  }),

  ...fromHeader(
    DOMCTL_H,
    '__HYPERVISOR_domctl',
    {
      XEN_DOMCTL_createdomain: 1,
      XEN_DOMCTL_destroydomain: 2,
      XEN_DOMCTL_pausedomain: 3,
      XEN_DOMCTL_unpausedomain: 4,
      XEN_DOMCTL_getdomaininfo: 5,
      XEN_DOMCTL_setvcpuaffinity: 9,
      XEN_DOMCTL_shadow_op: 10,
      XEN_DOMCTL_max_mem: 11,
      XEN_DOMCTL_setvcpucontext: 12,
      XEN_DOMCTL_getvcpucontext: 13,
      XEN_DOMCTL_getvcpuinfo: 14,
      XEN_DOMCTL_max_vcpus: 15,
      XEN_DOMCTL_scheduler_op: 16,
      XEN_DOMCTL_setdomainhandle: 17,
      XEN_DOMCTL_setdebugging: 18,
      XEN_DOMCTL_irq_permission: 19,
      XEN_DOMCTL_iomem_permission: 20,
      XEN_DOMCTL_ioport_permission: 21,
      XEN_DOMCTL_hypercall_init: 22,
      XEN_DOMCTL_settimeoffset: 24,
      XEN_DOMCTL_getvcpuaffinity: 25,
      XEN_DOMCTL_real_mode_area: 26,
      XEN_DOMCTL_resumedomain: 27,
      XEN_DOMCTL_sendtrigger: 28,
      XEN_DOMCTL_subscribe: 29,
      XEN_DOMCTL_gethvmcontext: 33,
      XEN_DOMCTL_sethvmcontext: 34,
      XEN_DOMCTL_set_address_size: 35,
      XEN_DOMCTL_get_address_size: 36,
      XEN_DOMCTL_assign_device: 37,
      XEN_DOMCTL_bind_pt_irq: 38,
      XEN_DOMCTL_memory_mapping: 39,
      XEN_DOMCTL_ioport_mapping: 40,
      XEN_DOMCTL_set_ext_vcpucontext: 42,
      XEN_DOMCTL_get_ext_vcpucontext: 43,
      XEN_DOMCTL_set_opt_feature: 44,
      XEN_DOMCTL_test_assign_device: 45,
      XEN_DOMCTL_set_target: 46,
      XEN_DOMCTL_deassign_device: 47,
      XEN_DOMCTL_unbind_pt_irq: 48,
      XEN_DOMCTL_get_device_group: 50,
      XEN_DOMCTL_debug_op: 54,
      XEN_DOMCTL_gethvmcontext_partial: 55,
      XEN_DOMCTL_vm_event_op: 56,
      XEN_DOMCTL_mem_sharing_op: 57,
      XEN_DOMCTL_gettscinfo: 59,
      XEN_DOMCTL_settscinfo: 60,
      XEN_DOMCTL_getpageframeinfo3: 61,
      XEN_DOMCTL_setvcpuextstate: 62,
      XEN_DOMCTL_getvcpuextstate: 63,
      XEN_DOMCTL_set_access_required: 64,
      XEN_DOMCTL_audit_p2m: 65,
      XEN_DOMCTL_set_virq_handler: 66,
      XEN_DOMCTL_set_broken_page_p2m: 67,
      XEN_DOMCTL_setnodeaffinity: 68,
      XEN_DOMCTL_getnodeaffinity: 69,
      XEN_DOMCTL_cacheflush: 71,
      XEN_DOMCTL_get_vcpu_msrs: 72,
      XEN_DOMCTL_set_vcpu_msrs: 73,
      XEN_DOMCTL_setvnumainfo: 74,
      XEN_DOMCTL_psr_cmt_op: 75,
      XEN_DOMCTL_monitor_op: 77,
      XEN_DOMCTL_psr_alloc: 78,
      XEN_DOMCTL_soft_reset: 79,
      XEN_DOMCTL_vuart_op: 81,
      XEN_DOMCTL_get_cpu_policy: 82,
      XEN_DOMCTL_set_cpu_policy: 83,
      XEN_DOMCTL_vmtrace_op: 84,
      XEN_DOMCTL_get_paging_mempool_size: 85,
      XEN_DOMCTL_set_paging_mempool_size: 86,
      XEN_DOMCTL_dt_overlay: 87,
      XEN_DOMCTL_gsi_permission: 88,
      XEN_DOMCTL_set_llc_colors: 89,
      XEN_DOMCTL_get_domain_state: 90,
      XEN_DOMCTL_gdbsx_guestmemio: 1000,
      XEN_DOMCTL_gdbsx_pausevcpu: 1001,
      XEN_DOMCTL_gdbsx_unpausevcpu: 1002,
      XEN_DOMCTL_gdbsx_domstatus: 1003,
    },
    {
      XEN_DOMCTL_getmemlist: 6,
      XEN_DOMCTL_getpageframeinfo: 7,
      XEN_DOMCTL_getpageframeinfo2: 8,
      XEN_DOMCTL_arch_setup: 23,
      XEN_DOMCTL_pin_mem_cacheattr: 41,
      XEN_DOMCTL_set_cpuid: 49,
      XEN_DOMCTL_set_machine_address_size: 51,
      XEN_DOMCTL_get_machine_address_size: 52,
      XEN_DOMCTL_suppress_spurious_page_faults: 53,
      XEN_DOMCTL_disable_migrate: 58,
      XEN_DOMCTL_set_max_evtchn: 70,
      XEN_DOMCTL_set_gnttab_limits: 80,
    },
  ),
  ...fromHeader(DOMCTL_H, 'XEN_DOMCTL_mem_sharing_op', { XEN_DOMCTL_MEM_SHARING_CONTROL: 0 }),

  ...fromHeader(
    TMEM_H,
    '__HYPERVISOR_tmem_op',
    {
      TMEM_NEW_POOL: 1,
      TMEM_DESTROY_POOL: 2,
      TMEM_PUT_PAGE: 4,
      TMEM_GET_PAGE: 5,
      TMEM_FLUSH_PAGE: 6,
      TMEM_FLUSH_OBJECT: 7,
      TMEM_AUTH: 101,
      TMEM_RESTORE_NEW: 102,
    },
    { TMEM_CONTROL: 0, TMEM_NEW_PAGE: 3, TMEM_READ: 8, TMEM_WRITE: 9, TMEM_XCHG: 10 },
  ),
  ...fromHeader(TMEM_H, 'TMEM_NEW_POOL flags', {
    TMEM_POOL_PERSIST: 1,
    TMEM_POOL_SHARED: 2,
    TMEM_POOL_PRECOMPRESSED: 4,
  }),

  // Only the errno values pagevisor names (Errno in @pagevisor/types, and ABI.md's prose).
  ...fromHeader(ERRNO_H, 'errno', {
    EPERM: 1,
    ENOENT: 2,
    ESRCH: 3,
    EIO: 5,
    E2BIG: 7,
    EBADF: 9,
    ECHILD: 10,
    EAGAIN: 11,
    ENOMEM: 12,
    EFAULT: 14,
    EBUSY: 16,
    EEXIST: 17,
    EINVAL: 22,
    ENOSPC: 28,
    ENOSYS: 38,
    EOPNOTSUPP: 95,
  }),
];

const XEN = new Map(XEN_NUMBERS.map((x) => [x.name, x]));

/** Xen's number `value` in `space`, if it has one. */
function xenAt(space: string, value: number): XenNumber | undefined {
  return XEN_NUMBERS.find((x) => x.space === space && x.value === value);
}

// ---- pagevisor's numbers and where each lives -------------------------------------------------

/** A table of op-numbers.ts: the space its numbers live in and the Xen name of each key. */
interface TableSpec {
  readonly space: string;
  readonly xenName: (key: string) => string;
}

/** Every table of op numbers in op-numbers.ts. */
const TABLES: Readonly<Record<string, TableSpec>> = {
  Hypercall: { space: 'hypercall', xenName: (k) => `__HYPERVISOR_${k}` },
  XenMem: { space: '__HYPERVISOR_memory_op', xenName: (k) => `XENMEM_${k}` },
  SharingOp: { space: 'XENMEM_sharing_op', xenName: (k) => `XENMEM_sharing_op_${k}` },
  PagingOp: { space: 'XENMEM_paging_op', xenName: (k) => `XENMEM_paging_op_${k}` },
  DomCtl: { space: '__HYPERVISOR_domctl', xenName: (k) => `XEN_DOMCTL_${k}` },
  TmemCmd: { space: '__HYPERVISOR_tmem_op', xenName: (k) => `TMEM_${k.toUpperCase()}` },
};

/** Exports of op-numbers.ts that are not Xen's numbers, and whose they are. */
const NOT_XEN: Readonly<Record<string, string>> = {
  Madvise: "Linux's MADV_* advice values (include/uapi/asm-generic/mman-common.h)",
  MEM_FLAGS_KNOWN: "pagevisor's: the XENMEMF_* bits it accepts",
  MAX_EXTENTS: "pagevisor's bound on one request's extents",
};

/** A number export named after a Xen constant: it must be that constant. */
const XEN_CONSTANT = /^(XEN|TMEM_)/;

/** Names of Xen operations and constants in a layout's `xen` text. */
const XEN_IDENTIFIER = /\b(?:__HYPERVISOR|XENMEM|XEN_DOMCTL|TMEM)_\w+/g;

type Exports = Readonly<Record<string, unknown>>;
type NumberTable = Readonly<Record<string, number>>;

function tableOf(exports: Exports, name: string): NumberTable {
  const t = exports[name];
  return typeof t === 'object' && t !== null ? (t as NumberTable) : {};
}

function keyOf(table: NumberTable, value: number): string | undefined {
  return Object.entries(table).find(([, v]) => v === value)?.[0];
}

function isPagevisorOnly(l: OpLayout): boolean {
  return /^none\b/.test(l.xen);
}

function selectorOf(l: OpLayout): FieldSpec | undefined {
  return l.request.fields.find((f) => f.role === 'selector');
}

/** One number on the way to an operation: the space, the value, and the Xen name it has there. */
interface Step {
  readonly space: string;
  readonly value: number;
  readonly name: string | undefined;
}

/**
 * The numbers that select an operation: its hypercall, its subop in that hypercall's space, its
 * selector in that subop's space. A name is the Xen name pagevisor's tables give the number (a
 * selector's is the selector field's doc); undefined when no table names it.
 */
function stepsOf(exports: Exports, l: OpLayout): Step[] {
  const hypercallKey = keyOf(tableOf(exports, 'Hypercall'), l.hypercall);
  const hypercallName = hypercallKey === undefined ? undefined : TABLES.Hypercall.xenName(hypercallKey);
  const steps: Step[] = [{ space: 'hypercall', value: l.hypercall, name: hypercallName }];
  const subSpace = hypercallName ?? `hypercall ${l.hypercall}`;
  const subTable = Object.entries(TABLES).find(([, t]) => t.space === subSpace);
  const subKey = subTable ? keyOf(tableOf(exports, subTable[0]), l.subop) : undefined;
  const subName = subTable && subKey !== undefined ? subTable[1].xenName(subKey) : undefined;
  steps.push({ space: subSpace, value: l.subop, name: subName });
  const sel = selectorOf(l);
  if (sel) steps.push({ space: subName ?? `${subSpace} ${l.subop}`, value: sel.value!, name: sel.doc });
  return steps;
}

/** "Xen's NAME is VALUE (HEADER)". */
function xenIs(x: XenNumber): string {
  return `Xen's ${x.name} is ${x.value} (${x.header})`;
}

/** "NAME (VALUE, HEADER)". */
function xenRef(x: XenNumber): string {
  return `${x.name} (${x.value}, ${x.header})`;
}

/**
 * Everything wrong with op-numbers.ts's numbers against Xen's: a table entry or constant named
 * after a Xen number that is not Xen's (wrong value, wrong space, retired, or not in the
 * transcription at all), an export nobody classified, and a pagevisor-only number (one only
 * operations marked `xen: 'none: ...'` use) that collides with a Xen number of its space.
 */
function numberProblems(exports: Exports, layouts: readonly OpLayout[]): string[] {
  const problems: string[] = [];
  const steps = layouts.map((l) => ({ l, steps: stepsOf(exports, l) }));
  for (const [tableName, spec] of Object.entries(TABLES)) {
    if (!(tableName in exports)) problems.push(`op-numbers.ts has no table ${tableName}`);
    for (const [key, value] of Object.entries(tableOf(exports, tableName))) {
      const where = `${tableName}.${key} = ${value}`;
      const users = steps.filter(({ steps: s }) => s.some((st) => st.space === spec.space && st.value === value)).map(({ l }) => l);
      // Selecting pagevisor-only operations alone makes a number pagevisor's own; one that also
      // selects a Xen operation (a Xen hypercall carrying a pagevisor sub-operation) is Xen's.
      const own = users.length > 0 && users.every(isPagevisorOnly);
      const name = spec.xenName(key);
      const x = XEN.get(name);
      if (own) {
        // pagevisor's own number: Xen has no such operation, and must have nothing at that number.
        if (x) problems.push(`${where} is marked pagevisor-only (xen: 'none: ...') but ${xenIs(x)}`);
        const clash = xenAt(spec.space, value);
        if (clash) problems.push(`${where} is pagevisor-only but collides with Xen's ${xenRef(clash)}`);
        continue;
      }
      if (!x) problems.push(`${where}: ${name} is not in the transcription of Xen's headers (add it, from the header, or mark its operations xen: 'none: ...')`);
      else if (x.space !== spec.space) problems.push(`${where}: ${name} is in Xen's ${x.space} space, not ${spec.space}`);
      else if (x.value !== value) problems.push(`${where}, but ${xenIs(x)}`);
      else if (x.retired) problems.push(`${where}: Xen has retired ${name}`);
    }
  }
  for (const [name, v] of Object.entries(exports)) {
    if (name in TABLES || name in NOT_XEN) continue;
    if (typeof v === 'number' && XEN_CONSTANT.test(name)) {
      const x = XEN.get(name);
      if (!x) problems.push(`${name} = ${v}: not in the transcription of Xen's headers`);
      else if (x.value !== v) problems.push(`${name} = ${v}, but ${xenIs(x)}`);
      else if (x.retired) problems.push(`${name}: Xen has retired it`);
      continue;
    }
    problems.push(`op-numbers.ts exports ${name}, which is neither a table checked here, a Xen-named constant nor listed as not Xen's`);
  }
  for (const name of Object.keys(NOT_XEN)) if (!(name in exports)) problems.push(`op-numbers.ts no longer exports ${name} (listed as not Xen's)`);
  return problems;
}

/**
 * Everything wrong with the operations' numbers: an operation marked as Xen's whose hypercall,
 * subop or selector is not Xen's number for the Xen operation it names, or whose `xen` text names
 * other Xen operations than its numbers select; a pagevisor-only operation whose numbers are all
 * taken by Xen, or whose hypercall is below 0x1000 (where the ABI promises they start).
 */
function layoutProblems(exports: Exports, layouts: readonly OpLayout[]): string[] {
  const problems: string[] = [];
  for (const l of layouts) {
    const steps = stepsOf(exports, l);
    if (isPagevisorOnly(l)) {
      // The first number Xen does not have opens pagevisor's own space; below it all is Xen's.
      const own = steps.findIndex((s) => !xenAt(s.space, s.value));
      if (own < 0) problems.push(`${l.op} is pagevisor-only but every number selecting it is Xen's: ${steps.map((s) => xenRef(xenAt(s.space, s.value)!)).join('; ')}`);
      if (own === 0 && l.hypercall < 0x1000) problems.push(`${l.op}: pagevisor-only hypercall ${l.hypercall} is below 0x1000`);
      const named: readonly string[] = l.xen.match(/0x[0-9a-f]+/g) ?? [];
      if (own === 0 && !named.includes(`0x${l.hypercall.toString(16)}`)) problems.push(`${l.op}: its xen text does not give its hypercall number 0x${l.hypercall.toString(16)}`);
      continue;
    }
    for (const s of steps) {
      const x = s.name === undefined ? undefined : XEN.get(s.name);
      if (s.name === undefined) problems.push(`${l.op}: ${s.value} in ${s.space} has no name in op-numbers.ts`);
      else if (!x) problems.push(`${l.op}: ${s.name} (${s.value}) is not in the transcription of Xen's headers`);
      else if (x.space !== s.space) problems.push(`${l.op} uses ${s.name} in ${s.space}, but Xen has it in ${x.space}`);
      else if (x.value !== s.value) problems.push(`${l.op} uses ${s.value} for ${s.name}, but ${xenIs(x)}`);
    }
    const named = [...new Set(l.xen.match(XEN_IDENTIFIER) ?? [])].sort();
    const selected = steps.slice(1).map((s) => s.name ?? '?').sort();
    if (named.join() !== selected.join()) problems.push(`${l.op}: its xen text names ${named.join(', ') || 'nothing'}, its numbers select ${selected.join(', ')}`);
  }
  return problems;
}

const EXPORTS = opNumbers as unknown as Exports;
const LAYOUTS = Object.values(OP_LAYOUTS) as OpLayout[];

describe("Xen's numbers, transcribed from Xen's public headers", () => {
  it('name each number once, from a header, and give no two numbers of a space the same value', () => {
    expect(XEN.size, 'names are unique').toBe(XEN_NUMBERS.length);
    const headers = new Set<string>([XEN_H, MEMORY_H, DOMCTL_H, TMEM_H, ERRNO_H]);
    for (const x of XEN_NUMBERS) {
      expect(headers.has(x.header), `${x.name}: ${x.header}`).toBe(true);
      expect(Number.isSafeInteger(x.value), x.name).toBe(true);
      const same = XEN_NUMBERS.filter((y) => y.space === x.space && y.value === x.value);
      expect(same.map((y) => y.name), `${x.space} ${x.value}`).toEqual([x.name]);
    }
  });

  it("end Xen's hypercall range below 64, as op-numbers.ts and ABI.md say", () => {
    const hypercalls = XEN_NUMBERS.filter((x) => x.space === 'hypercall').map((x) => x.value);
    expect(Math.max(...hypercalls)).toBeLessThan(64);
  });
});

describe("op-numbers.ts against Xen's headers", () => {
  it("holds Xen's number for every table entry and constant named after Xen's, and nothing of pagevisor's collides", () => {
    expect(numberProblems(EXPORTS, LAYOUTS)).toEqual([]);
  });

  it("gives every operation marked as Xen's the numbers of the Xen operation its xen text names", () => {
    expect(layoutProblems(EXPORTS, LAYOUTS)).toEqual([]);
  });

  it('names the entries it checks by their Xen names', () => {
    expect(stepsOf(EXPORTS, OP_LAYOUTS.maximum_gpfn)).toEqual([
      { space: 'hypercall', value: 12, name: '__HYPERVISOR_memory_op' },
      { space: '__HYPERVISOR_memory_op', value: 14, name: 'XENMEM_maximum_gpfn' },
    ]);
    expect(stepsOf(EXPORTS, OP_LAYOUTS.domctl_sharing_control).map((s) => s.name)).toEqual([
      '__HYPERVISOR_domctl',
      'XEN_DOMCTL_mem_sharing_op',
      'XEN_DOMCTL_MEM_SHARING_CONTROL',
    ]);
    expect(stepsOf(EXPORTS, OP_LAYOUTS.tmem_put_page).map((s) => s.name)).toEqual(['__HYPERVISOR_tmem_op', 'TMEM_PUT_PAGE']);
  });

  it('fails when a number drifts from Xen', () => {
    const drifted = { ...EXPORTS, XenMem: { ...opNumbers.XenMem, maximum_gpfn: 2 } };
    expect(numberProblems(drifted, LAYOUTS)).toContain(
      "XenMem.maximum_gpfn = 2, but Xen's XENMEM_maximum_gpfn is 14 (xen/include/public/memory.h)",
    );
    const domctl = { ...EXPORTS, DomCtl: { ...opNumbers.DomCtl, mem_sharing_op: 58 } };
    expect(numberProblems(domctl, LAYOUTS)).toContain(
      "DomCtl.mem_sharing_op = 58, but Xen's XEN_DOMCTL_mem_sharing_op is 57 (xen/include/public/domctl.h)",
    );
    const constant = { ...EXPORTS, TMEM_POOL_SHARED: 4 };
    expect(numberProblems(constant, LAYOUTS)).toEqual(["TMEM_POOL_SHARED = 4, but Xen's TMEM_POOL_SHARED is 2 (xen/include/public/tmem.h)"]);
    // An operation whose number is not that of the Xen operation it names.
    const renamed = LAYOUTS.map((l) => (l.op === 'maximum_gpfn' ? { ...l, subop: 2 } : l));
    expect(layoutProblems(EXPORTS, renamed)).toContain('maximum_gpfn: 2 in __HYPERVISOR_memory_op has no name in op-numbers.ts');
    const misnamed = LAYOUTS.map((l) => (l.op === 'maximum_gpfn' ? { ...l, xen: 'XENMEM_maximum_ram_page' } : l));
    expect(layoutProblems(EXPORTS, misnamed)).toEqual([
      'maximum_gpfn: its xen text names XENMEM_maximum_ram_page, its numbers select XENMEM_maximum_gpfn',
    ]);
  });

  it("fails when a new Xen-named op or constant is not in the transcription", () => {
    const added = { ...EXPORTS, XenMem: { ...opNumbers.XenMem, frobnicate: 29 } };
    expect(numberProblems(added, LAYOUTS)).toEqual([
      "XenMem.frobnicate = 29: XENMEM_frobnicate is not in the transcription of Xen's headers (add it, from the header, or mark its operations xen: 'none: ...')",
    ]);
    const constant = { ...EXPORTS, XENMEMF_frobnicate: 1 << 20 };
    expect(numberProblems(constant, LAYOUTS)).toEqual(["XENMEMF_frobnicate = 1048576: not in the transcription of Xen's headers"]);
    const unclassified = { ...EXPORTS, Frobnicate: { a: 1 } };
    expect(numberProblems(unclassified, LAYOUTS)).toEqual([
      "op-numbers.ts exports Frobnicate, which is neither a table checked here, a Xen-named constant nor listed as not Xen's",
    ]);
  });

  it("fails when a Xen operation is marked pagevisor-only to escape the check", () => {
    const layouts = LAYOUTS.map((l) => (l.op === 'maximum_gpfn' ? { ...l, xen: 'none: 0xc' } : l));
    expect(numberProblems(EXPORTS, layouts)).toEqual([
      "XenMem.maximum_gpfn = 14 is marked pagevisor-only (xen: 'none: ...') but Xen's XENMEM_maximum_gpfn is 14 (xen/include/public/memory.h)",
      "XenMem.maximum_gpfn = 14 is pagevisor-only but collides with Xen's XENMEM_maximum_gpfn (14, xen/include/public/memory.h)",
    ]);
    expect(layoutProblems(EXPORTS, layouts)).toEqual([
      "maximum_gpfn is pagevisor-only but every number selecting it is Xen's: __HYPERVISOR_memory_op (12, xen/include/public/xen.h); XENMEM_maximum_gpfn (14, xen/include/public/memory.h)",
    ]);
  });

  it("fails when a pagevisor-only number collides with Xen's", () => {
    const exports = { ...EXPORTS, Hypercall: { ...opNumbers.Hypercall, read_page: 40 } };
    const layouts = LAYOUTS.map((l) => (l.op === 'read_page' ? { ...l, hypercall: 40 } : l));
    expect(numberProblems(exports, layouts)).toEqual([
      "Hypercall.read_page = 40 is pagevisor-only but collides with Xen's __HYPERVISOR_xenpmu_op (40, xen/include/public/xen.h)",
    ]);
    // A pagevisor-only sub-operation of a Xen hypercall: its subop must be free in Xen's space.
    const subop = LAYOUTS.map((l) => (l.op === 'madvise' ? { ...l, hypercall: 12, subop: 2, xen: 'none: pagevisor madvise' } : l));
    expect(layoutProblems(EXPORTS, subop)).toEqual([
      "madvise is pagevisor-only but every number selecting it is Xen's: __HYPERVISOR_memory_op (12, xen/include/public/xen.h); XENMEM_maximum_ram_page (2, xen/include/public/memory.h)",
    ]);
    // ...and passes when it is free there.
    const free = LAYOUTS.map((l) => (l.op === 'madvise' ? { ...l, hypercall: 12, subop: 29, xen: 'none: pagevisor madvise' } : l));
    const { madvise: _, ...hypercalls } = opNumbers.Hypercall;
    const freeExports = { ...EXPORTS, Hypercall: hypercalls, XenMem: { ...opNumbers.XenMem, madvise: 29 } };
    expect(layoutProblems(freeExports, free)).toEqual([]);
    expect(numberProblems(freeExports, free)).toEqual([]);
    const low = LAYOUTS.map((l) => (l.op === 'madvise' ? { ...l, hypercall: 0x800, xen: 'none: pagevisor hypercall 0x800' } : l));
    expect(layoutProblems(EXPORTS, low)).toEqual(['madvise: pagevisor-only hypercall 2048 is below 0x1000']);
  });
});

describe("Xen numbers quoted elsewhere in the ABI", () => {
  it("DOMID_SELF and the errno values of @pagevisor/types are Xen's", () => {
    expect(DOMID_SELF).toBe(XEN.get('DOMID_SELF')!.value);
    for (const [name, value] of Object.entries(Errno)) {
      expect(XEN.get(name), `${name} is in the transcription of errno.h`).toMatchObject({ space: 'errno', value });
    }
  });

  it("ABI.md quotes Xen's sharing-handle errors with Xen's values and the errnos they read as", () => {
    const doc = renderAbiDoc();
    const quoted = [...doc.matchAll(/`(XENMEM_SHARING_OP_[SC]_HANDLE_INVALID)` \((-?\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]);
    expect(quoted).toEqual([
      ['XENMEM_SHARING_OP_S_HANDLE_INVALID', XEN.get('XENMEM_SHARING_OP_S_HANDLE_INVALID')!.value],
      ['XENMEM_SHARING_OP_C_HANDLE_INVALID', XEN.get('XENMEM_SHARING_OP_C_HANDLE_INVALID')!.value],
    ]);
    expect(doc).toContain('read as -ECHILD and -EBADF');
    expect([-XEN.get('ECHILD')!.value, -XEN.get('EBADF')!.value]).toEqual(quoted.map(([, v]) => v));
  });
});
