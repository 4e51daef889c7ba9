// The multi-step teachers: "flow" (rectified flow / flow matching, velocity MSE) and "vp"
// (DDPM noise prediction), both class-conditional with label dropout for guidance, with an EMA
// copy that samples through Euler, Heun or DDIM (image-methods spec §2.1).
#pragma once

namespace onestep {

void register_teacher_methods();

}  // namespace onestep
