package engine

import (
	"fmt"

	"github.com/ecsd/ecsd/api/ecs"
)

// depVerdict is where one container stands with respect to its dependsOn.
type depVerdict int

const (
	depWait  depVerdict = iota // some condition is not met yet
	depReady                   // every condition is met
	depNever                   // some condition can no longer be met
)

// dependencyState evaluates c's dependsOn against the task's containers.
// why explains depNever.
func dependencyState(c *container, byName map[string]*container) (v depVerdict, why string) {
	v = depReady
	for _, d := range c.def.DependsOn {
		dep := byName[d.ContainerName]
		if dep == nil {
			return depNever, fmt.Sprintf("dependency %q is not a container of the task", d.ContainerName)
		}
		switch d.Condition {
		case ecs.ContainerConditionSTART:
			if !dep.started {
				v = depWait
			}
		case ecs.ContainerConditionCOMPLETE:
			if !dep.exited {
				v = depWait
			}
		case ecs.ContainerConditionSUCCESS:
			if !dep.exited {
				v = depWait
			} else if dep.exitCode == nil || *dep.exitCode != 0 {
				code := "unknown"
				if dep.exitCode != nil {
					code = fmt.Sprint(*dep.exitCode)
				}
				return depNever, fmt.Sprintf("dependency %q exited with code %s, condition SUCCESS not met", d.ContainerName, code)
			}
		case ecs.ContainerConditionHEALTHY:
			if dep.exited {
				return depNever, fmt.Sprintf("dependency %q exited before it was healthy", d.ContainerName)
			}
			if !dep.hasHealth {
				return depNever, fmt.Sprintf("dependency %q has no health check, condition HEALTHY cannot be met", d.ContainerName)
			}
			if dep.health != HealthHealthy {
				v = depWait
			}
		default:
			return depNever, fmt.Sprintf("dependency %q: unknown condition %q", d.ContainerName, d.Condition)
		}
	}
	return v, ""
}

// checkDependencies rejects dependsOn and volumesFrom that name unknown
// containers or form a cycle (the task could never start).
func checkDependencies(defs []ecs.ContainerDefinition) error {
	idx := map[string]int{}
	for i, d := range defs {
		idx[d.Name] = i
	}
	edges := make([][]int, len(defs))
	for i, d := range defs {
		for _, dep := range d.DependsOn {
			j, ok := idx[dep.ContainerName]
			if !ok {
				return fmt.Errorf("container %q depends on %q, which is not in the task definition", d.Name, dep.ContainerName)
			}
			edges[i] = append(edges[i], j)
		}
		for _, vf := range d.VolumesFrom {
			j, ok := idx[vf.SourceContainer]
			if !ok {
				return fmt.Errorf("container %q takes volumes from %q, which is not in the task definition", d.Name, vf.SourceContainer)
			}
			edges[i] = append(edges[i], j)
		}
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(defs))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case visiting:
			return fmt.Errorf("container %q is part of a dependency cycle", defs[i].Name)
		case done:
			return nil
		}
		state[i] = visiting
		for _, j := range edges[i] {
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = done
		return nil
	}
	for i := range defs {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

// createOrder lists containers so that every volumesFrom source comes before
// the containers that take its volumes (Docker needs the source to exist).
func createOrder(cs []*container, byName map[string]*container) []*container {
	out := make([]*container, 0, len(cs))
	placed := map[*container]bool{}
	var place func(c *container)
	place = func(c *container) {
		if placed[c] {
			return
		}
		placed[c] = true
		for _, vf := range c.def.VolumesFrom {
			if src := byName[vf.SourceContainer]; src != nil {
				place(src)
			}
		}
		out = append(out, c)
	}
	for _, c := range cs {
		place(c)
	}
	return out
}

// stopWave is the set of running containers no other running container
// depends on: they stop first, so a container outlives everything that
// depends on it (the reverse of the start order).
func stopWave(cs []*container, byName map[string]*container) []*container {
	needed := map[string]bool{}
	for _, c := range cs {
		if !c.running || c.stopped {
			continue
		}
		for _, d := range c.def.DependsOn {
			needed[d.ContainerName] = true
		}
	}
	var wave []*container
	for _, c := range cs {
		if c.running && !c.stopped && !needed[c.name] {
			wave = append(wave, c)
		}
	}
	if len(wave) == 0 {
		// Only a cycle could get here (rejected at start, but re-attached
		// containers have no definition to check): stop the rest together.
		for _, c := range cs {
			if c.running && !c.stopped {
				wave = append(wave, c)
			}
		}
	}
	return wave
}
