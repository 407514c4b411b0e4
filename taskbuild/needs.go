// Package taskbuild is where a new task is made, for RunTask/StartTask and
// the service scheduler alike: what one copy of a definition needs from an
// instance (Needs) and the record of a copy once placed or left waiting
// (Spec.New). Callers validate and decide; this package only builds.
package taskbuild

import (
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// NetworkMode is the definition's network mode, bridge when unset (ECS's
// default on EC2).
func NetworkMode(def *ecs.TaskDefinition) ecs.NetworkMode {
	if def.NetworkMode == "" {
		return ecs.NetworkModeBridge
	}
	return def.NetworkMode
}

// Needs is what one copy of def takes from an instance, given its effective
// containers (after overrides) and task size (after overrides; "" when not
// set), both as the placement request's task and as the reservation to charge.
//
// CPU is the task's size when set, else the sum of the containers'. Memory is
// the task's size when set, else the sum over containers of memoryReservation
// when given (what ECS reserves: the soft limit), else memory. Static host
// ports: in bridge mode a hostPort > 0 (0 or none is dynamic, picked by
// Docker at start); in host mode the hostPort, else the containerPort it must
// equal; awsvpc and none use no host ports.
func Needs(def *ecs.TaskDefinition, containers []ecs.ContainerDefinition, taskCPU, taskMemory string) (scheduler.Task, resource.Usage) {
	var cpu, mem int64
	for _, c := range containers {
		cpu += int64(c.Cpu)
		switch {
		case c.MemoryReservation != nil:
			mem += int64(*c.MemoryReservation)
		case c.Memory != nil:
			mem += int64(*c.Memory)
		}
	}
	if n, ok := parseSize(taskCPU, "vcpu"); ok {
		cpu = n
	}
	if n, ok := parseSize(taskMemory, "gb"); ok {
		mem = n
	}
	mode := NetworkMode(def)
	var tcp, udp []int32
	for _, c := range containers {
		for _, pm := range c.PortMappings {
			var port int32
			switch mode {
			case ecs.NetworkModeBridge:
				if pm.HostPort != nil {
					port = *pm.HostPort
				}
			case ecs.NetworkModeHost:
				if pm.HostPort != nil && *pm.HostPort > 0 {
					port = *pm.HostPort
				} else if pm.ContainerPort != nil {
					port = *pm.ContainerPort
				}
			}
			if port <= 0 {
				continue
			}
			if pm.Protocol == ecs.TransportProtocolUdp {
				udp = append(udp, port)
			} else {
				tcp = append(tcp, port)
			}
		}
	}
	need := scheduler.Task{CPU: cpu, Memory: mem, TCPPorts: tcp, UDPPorts: udp, NetworkMode: string(mode)}
	for _, a := range def.RequiresAttributes {
		need.RequiredAttributes = append(need.RequiredAttributes, scheduler.Attribute{Name: a.Name, Value: a.Value})
	}
	return need, resource.Usage{CPU: cpu, Memory: mem, TCPPorts: slices.Clone(tcp), UDPPorts: slices.Clone(udp)}
}

// parseSize reads a task-level size: CPU units or MiB ("1024"), or a number
// of unit ("1 vCPU", "2 GB"; 1024 each). Registration stores plain numbers;
// the unit forms are read for records written before it did.
func parseSize(s, unit string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if len(s) <= len(unit) || !strings.EqualFold(s[len(s)-len(unit):], unit) {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s[:len(s)-len(unit)]), 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return int64(v * 1024), true
}
