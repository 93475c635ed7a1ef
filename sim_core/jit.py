"""How sim_core compiles its kernels, and the StructRefs they take.

Numba's reference counting costs an atomic increment and decrement per array a compiled
function holds across a branch or a call (each World attribute it keeps in a local, each
array argument), and LLVM cannot remove them. In the controller shoot-out's thrashing
guests perf put 22% of all the time on those two instructions (2026-12-08, mom/db/1.6).
None of the kernels needs them: they never allocate an array nor keep one, and Python
holds the World (and so every array in it) for as long as a call runs. So they are
compiled without numba's reference counting (``_nrt=False``, the remedy numba's
maintainers give in numba#2345 and #2350):

- ``njit_kernel`` for the functions that take the World (or a Device);
- ``njit_leaf`` for array-level leaves, also forced inline (ESC's pick: a call passing
  five arrays field by field cost the replay a fifth of its speed).

Neither may return an array (the caller would own a reference nobody took): numba refuses
one the function did not get as an argument, and a test checks every compiled signature
for the rest. A function that allocates does not compile under them
("NRT required but not enabled"): keep it on plain ``njit(cache=True)``.

``register_struct`` and ``define_proxy`` replace ``numba.experimental.structref``'s
``register`` and ``define_proxy`` for the World and the Device:

- numba's attribute read needs the runtime only to find the struct's data
  (``NRT_MemInfo_data_fast``), the meminfo's fourth field; without the runtime it is read
  directly, and the attribute is returned borrowed (no reference taken), which is what
  the reference-counted path does after its increment/decrement pair cancels;
- unboxing a struct passed from Python takes a reference to its meminfo that the call
  wrapper gives back only if the function has the runtime: a kernel called from Python
  without it kept one per call, so no World was ever freed (a Ray worker reached 14 GB in
  a full reproduction). There the wrapper gives it back through the Python object.
"""

from __future__ import annotations

from numba import njit, types
from numba.core import cgutils, imputils
from numba.core.datamodel import default_manager, models
from numba.core.extending import (
    NativeValue,
    box,
    infer_getattr,
    lower_getattr_generic,
    lower_setattr_generic,
    unbox,
)
from numba.core.runtime.nrtdynmod import _meminfo_struct_type
from numba.core.typing.templates import AttributeTemplate
from numba.experimental import structref

njit_kernel = njit(cache=True, _nrt=False)
njit_leaf = njit(cache=True, _nrt=False, forceinline=True)

_MEMINFO_DATA = 3  # NRT_MemInfo: refct, dtor, dtor_info, data, size (numba/core/runtime/nrt.cpp)


def register_struct(struct_type):
    """Register a StructRef type for jit code as ``structref.register`` does, with
    attribute reads that compile with or without numba's reference counting (writes,
    which only the constructor makes, still need it)."""
    default_manager.register(struct_type, models.StructRefModel)

    def payload_of(context, builder, typ, val):
        meminfo = cgutils.create_struct_proxy(typ)(context, builder, value=val).meminfo
        if context.enable_nrt:
            data = context.nrt.meminfo_data(builder, meminfo)
        else:
            mi = builder.bitcast(meminfo, _meminfo_struct_type.as_pointer())
            data = builder.load(cgutils.gep(builder, mi, 0, _MEMINFO_DATA))
        payload_type = typ.get_data_type()
        alloc = context.data_model_manager[payload_type].get_value_type()
        return cgutils.create_struct_proxy(payload_type)(
            context, builder, ref=builder.bitcast(data, alloc.as_pointer())
        )

    @infer_getattr
    class _Attributes(AttributeTemplate):
        key = struct_type

        def generic_resolve(self, typ, attr):
            return typ.field_dict.get(attr)

    @lower_getattr_generic(struct_type)
    def _getattr(context, builder, typ, val, attr):
        value = getattr(payload_of(context, builder, typ, val), attr)
        return imputils.impl_ret_borrowed(context, builder, typ.field_dict[attr], value)

    @lower_setattr_generic(struct_type)
    def _setattr(context, builder, sig, args, attr):
        typ, value_type = sig.args
        instance, value = args
        payload = payload_of(context, builder, typ, instance)
        value = context.cast(builder, value, value_type, typ.field_dict[attr])
        context.nrt.incref(builder, value_type, value)
        context.nrt.decref(builder, value_type, getattr(payload, attr))  # after: may be it
        setattr(payload, attr, value)

    return struct_type


def define_proxy(py_class, struct_type, fields) -> None:
    """``structref.define_proxy`` with an unboxing that gives its reference back in
    functions compiled without numba's runtime too."""
    structref.define_constructor(py_class, struct_type, fields)
    new_proxy = py_class._numba_box_

    @box(struct_type)
    def _box(typ, val, c):
        meminfo = cgutils.create_struct_proxy(typ)(c.context, c.builder, value=val).meminfo
        boxed_meminfo = c.box(types.MemInfoPointer(types.voidptr), meminfo)
        ctor = c.pyapi.unserialize(c.pyapi.serialize_object(new_proxy))
        typ_obj = c.pyapi.unserialize(c.pyapi.serialize_object(typ))
        out = c.pyapi.call_function_objargs(ctor, [typ_obj, boxed_meminfo])
        for obj in (ctor, typ_obj, boxed_meminfo):
            c.pyapi.decref(obj)
        return out

    @unbox(struct_type)
    def _unbox(typ, obj, c):
        meminfo_obj = c.pyapi.object_getattr_string(obj, "_meminfo")
        meminfo = c.unbox(types.MemInfoPointer(types.voidptr), meminfo_obj).value  # acquires
        ref = cgutils.create_struct_proxy(typ)(c.context, c.builder)
        ref.meminfo = meminfo
        if c.context.enable_nrt:  # the wrapper releases it after the call
            c.pyapi.decref(meminfo_obj)
            return NativeValue(ref._getvalue())

        def release():
            c.pyapi.decref(c.pyapi.call_method(meminfo_obj, "release"))
            c.pyapi.decref(meminfo_obj)

        return NativeValue(ref._getvalue(), cleanup=release)
